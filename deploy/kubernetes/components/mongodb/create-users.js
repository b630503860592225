// fedcart: one MongoDB user per cart, allowed only on its own database, and optionally a seeding user.
//
// The official mongo image runs this file once, when it initialises an empty data directory
// (/docker-entrypoint-initdb.d), with mongosh logged in as MONGO_INITDB_ROOT_USERNAME. docker-compose.yml and
// the Kubernetes `mongodb` component both mount it there. Run it again by hand to add carts or change passwords
// (it updates users that exist):
//   mongosh -u root -p "$(cat ROOT_PASSWORD_FILE)" --authenticationDatabase admin create-users.js
//
// Read from the environment:
//   FEDCART_CARTS        the carts, separated by spaces or commas (cart-0 cart-1 ...): each is a user name
//   FEDCART_DB_PREFIX    database prefix: cart C owns database <prefix>-C (MONGO_DB of `fedcart data synth`)
//   FEDCART_SECRETS_DIR  where the password files are: mongodb-<user>-password for each user made here
//   FEDCART_SEED_USER    optional: the demo seeder's user name (compose's `seed`); unset = no such user
//
// Cart C becomes user C of database <prefix>-C (its authentication database) with readWrite on that database
// alone: its MONGO_URL is mongodb://C@<host>:27017/<prefix>-C and its password comes from its own secret file.
// The seeder's user, in database admin, gets readWrite on every cart's database and nothing else.
// Nothing here grants a role on admin, config or local, or on any database another cart owns.

const fs = require('fs');

const NAME = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/;
const RESERVED = new Set(['root', 'seed', 'admin', 'config', 'local']);
const MIN_PASSWORD = 16;

function setting(name) {
  const value = (process.env[name] || '').trim();
  if (!value) {
    throw new Error(`fedcart: ${name} is not set`);
  }
  return value;
}

function password(dir, name) {
  const path = `${dir}/mongodb-${name}-password`;
  let value;
  try {
    value = fs.readFileSync(path, 'utf8').replace(/[\r\n]+$/, '');
  } catch (error) {
    throw new Error(`fedcart: cannot read ${path} (${error.message}); create the secrets first`);
  }
  if (value.length < MIN_PASSWORD) {
    throw new Error(`fedcart: ${path} holds ${value.length} characters, fewer than ${MIN_PASSWORD}`);
  }
  return value;
}

function ensureUser(dbName, user, pwd, roles) {
  const target = db.getSiblingDB(dbName);
  if (target.getUser(user)) {
    target.updateUser(user, { pwd: pwd, roles: roles });
  } else {
    target.createUser({ user: user, pwd: pwd, roles: roles });
  }
  print(`fedcart: ${user}@${dbName}: ${roles.map((r) => `${r.role} on ${r.db}`).join(', ')}`);
}

const carts = setting('FEDCART_CARTS').split(/[\s,]+/).filter(Boolean);
const prefix = setting('FEDCART_DB_PREFIX');
const secrets = setting('FEDCART_SECRETS_DIR');
const seeder = (process.env.FEDCART_SEED_USER || '').trim();
if (!NAME.test(prefix)) {
  throw new Error(`fedcart: FEDCART_DB_PREFIX ${JSON.stringify(prefix)} is not a plain lower-case name`);
}
if (new Set(carts).size !== carts.length) {
  throw new Error(`fedcart: FEDCART_CARTS names a cart twice: ${carts.join(' ')}`);
}
for (const cart of carts) {
  if (!NAME.test(cart) || RESERVED.has(cart)) {
    throw new Error(`fedcart: ${JSON.stringify(cart)} cannot be a cart's user name`);
  }
}
if (seeder && (!NAME.test(seeder) || carts.includes(seeder) || ['root', 'admin', 'config', 'local'].includes(seeder))) {
  throw new Error(`fedcart: FEDCART_SEED_USER ${JSON.stringify(seeder)} cannot be the seeder's user name`);
}

const databases = carts.map((cart) => `${prefix}-${cart}`);
carts.forEach((cart, i) => {
  ensureUser(databases[i], cart, password(secrets, cart), [{ role: 'readWrite', db: databases[i] }]);
});
if (seeder) {
  ensureUser('admin', seeder, password(secrets, seeder), databases.map((name) => ({ role: 'readWrite', db: name })));
}
