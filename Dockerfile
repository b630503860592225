# fedcart: one image for both node kinds (`fedcart bridge`, `fedcart node`) and the CLI tools.
# Bridges never import TensorFlow, so sharing the image costs them disk, not memory.
# Build: `docker compose build` (or `make up`); the build context is limited by .dockerignore.

# --- front-end assets: npm ci in a Node stage; only the served files move on ---
FROM node:22-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY web/css ./css
COPY web/js ./js

# --- runtime ---
FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# libzbar0 decodes QR codes (pyzbar); without --no-install-recommends it drags in ImageMagick.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libzbar0 \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, from the runtime lock (`make lock`): exact versions, every file's hash checked.
# This layer survives code changes and only rebuilds when the lock does.
WORKDIR /src
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

# Then the packages themselves: a regular (non-editable) install with their package data.
# --no-deps: nothing beyond the lock gets in; --no-build-isolation: built with the locked setuptools.
COPY pyproject.toml README.md ./
COPY cartnet ./cartnet
COPY parent_cart ./parent_cart
COPY child_cart ./child_cart
COPY fedcart ./fedcart
RUN pip install --no-deps --no-build-isolation . \
    && cd / && rm -rf /src

# The UI's assets live outside the Python packages: UI_WEB_DIR tells the cart where.
COPY --from=web /web /opt/fedcart/web
ENV UI_WEB_DIR=/opt/fedcart/web \
    DATA_DIR=/data

# /data: a node's data dir (its volume); /authority: the swarm authority's volume, mounted only into compose's
# one-shot `authority` and `enrol-*` services. Both exist here so that a fresh named volume takes their owner.
RUN useradd --system --user-group --uid 10001 --home-dir /home/fedcart --create-home fedcart \
    && mkdir -p /data /authority \
    && chown fedcart:fedcart /data /authority
USER fedcart
# No .env here: settings come from the environment (docker compose passes .env in as env_file).
WORKDIR /home/fedcart

# 8470 relay (HTTP + WebSocket) and 8468/udp Kademlia for bridges; 5000 the cart UI.
EXPOSE 8470 8468/udp 5000
# Health checks are per role (bridge: /health on PORT, cart: /api/health on UI_PORT): see docker-compose.yml.
ENTRYPOINT ["fedcart"]
CMD ["--help"]
