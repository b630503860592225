"""Put an exported recommend model into the APK's assets as the app's fallback model.

The app runs this model until it has downloaded a newer one from a bridge, so it must come
from the real pipeline (`fedcart train` + `fedcart export --tflite`), never be hand-made:

    fedcart data synth --rows 3000 --carts 1 --seed 0 --data-dir /tmp/bundle/cart
    fedcart train --data-dir /tmp/bundle/cart --seed 0 --no-progress
    fedcart export --tflite --data-dir /tmp/bundle/cart --golden /tmp/bundle/golden.json
    python mobile_app/tools/bundle_model.py --golden /tmp/bundle/golden.json \
        --tflite /tmp/bundle/cart/models/recommend-<sha256[:16]>.tflite

It writes `model.tflite` and `model_meta.json` (the golden file without its cases, which is
the shape the app's MetadataParser.parseBundled reads) after checking the hash, so a model
and metadata that do not belong together are refused here rather than on a phone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "app" / "src" / "main" / "assets"


def bundle(golden_path: Path, tflite_path: Path, assets: Path) -> str:
    """Write the assets; returns the model's sha256. Raises ValueError when the files disagree."""
    golden = json.loads(golden_path.read_text(encoding="utf-8"))
    model = tflite_path.read_bytes()
    digest = hashlib.sha256(model).hexdigest()
    if golden.get("model_sha256") != digest:
        raise ValueError(f"{tflite_path} has sha256 {digest}, {golden_path} is for {golden.get('model_sha256')}")
    meta = {key: value for key, value in golden.items() if key != "cases"}
    assets.mkdir(parents=True, exist_ok=True)
    (assets / "model.tflite").write_bytes(model)
    (assets / "model_meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return digest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--golden", type=Path, required=True, help="golden vectors written by fedcart export --golden")
    parser.add_argument("--tflite", type=Path, required=True, help="the .tflite that export wrote")
    parser.add_argument("--assets", type=Path, default=ASSETS, help=f"target folder (default {ASSETS})")
    args = parser.parse_args(argv)
    try:
        digest = bundle(args.golden, args.tflite, args.assets)
    except (OSError, ValueError) as exc:
        print(f"bundle_model: {exc}", file=sys.stderr)
        return 1
    print(f"bundled model {digest[:16]} into {args.assets}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
