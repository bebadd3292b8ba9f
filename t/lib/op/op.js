// The OpenID Provider of the ngx_ent tests: oidc-provider on loopback,
// over TLS, configured by one JSON file.
//
//   node op.js /path/to/config.json
//
// Besides the provider's own endpoints (discovery, /auth, /token, /jwks,
// /me, /session/end, /token/introspection, /token/revocation) it serves:
//
//   GET  /interaction/:uid         a tiny sign-in page naming the uid
//   POST /interaction/:uid/login   form "login=<sub>": signs the account in
//                                  and consents to what was asked, in one step
//   POST /interaction/:uid/abort   the user cancels: access_denied
//
// and, for the tests only (never counted in /test/stats):
//
//   POST /test/sign      {"key":"rsa|ec|ed|none|hs-pub","header":{},"claims":{}}
//                        -> {"token":"<compact JWS>","kid":...,"alg":...}
//   POST /test/rotate    {"retire":false} -> a new RSA key signs from now on
//   GET  /test/stats     request counts per path, and events
//   POST /test/stats/reset
//   POST /test/clients   {"clients":[...]} replaces the clients
//   POST /test/accounts  {"sub":{claims}|null,...} adds, replaces, deletes
//   POST /test/fault     {"path":"/jwks","status":503,"body":"..",
//                         "content_type":"..","delay_ms":0,"times":1}
//                        {"path":"/jwks"} clears that path's fault, {} all
//
// The private keys never leave this process (and the JWKS file it keeps).
// Logs go to stderr.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as querystring from 'node:querystring';

import Provider, { errors } from 'oidc-provider';

const confPath = process.argv[2];
if (!confPath) {
  process.stderr.write('usage: node op.js config.json\n');
  process.exit(2);
}
const conf = JSON.parse(fs.readFileSync(confPath, 'utf8'));

function log(...args) {
  process.stderr.write(`${new Date().toISOString()} op[${conf.name || conf.port}] ${args.join(' ')}\n`);
}

// a test must not leave us behind: when the process that started us is
// gone (we were reparented), stop
const parentPid = process.ppid;
setInterval(() => {
  if (process.ppid !== parentPid) {
    log('parent gone, exiting');
    process.exit(0);
  }
}, 500).unref();

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    log(`${sig}, exiting`);
    process.exit(0);
  });
}


// keys

const b64u = (buf) => Buffer.from(buf).toString('base64url');

function thumbprint(jwk) {
  const members = {
    RSA: ['e', 'kty', 'n'],
    EC: ['crv', 'kty', 'x', 'y'],
    OKP: ['crv', 'kty', 'x'],
  }[jwk.kty];
  const obj = {};
  for (const m of members) obj[m] = jwk[m];
  return b64u(crypto.createHash('sha256').update(JSON.stringify(obj)).digest());
}

function newKey(type) {
  let pair;
  let alg;
  if (type === 'rsa') {
    pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    alg = 'RS256';
  } else if (type === 'ec') {
    pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    alg = 'ES256';
  } else {
    pair = crypto.generateKeyPairSync('ed25519');
    alg = 'EdDSA';
  }
  const jwk = pair.privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: thumbprint(jwk), use: 'sig', alg };
}

function loadKeys() {
  const path = conf.jwks_path;
  if (path && fs.existsSync(path)) {
    return JSON.parse(fs.readFileSync(path, 'utf8'));
  }
  const jwks = { keys: [newKey('rsa'), newKey('ec'), newKey('ed')] };
  saveKeys(jwks);
  return jwks;
}

function saveKeys(jwks) {
  if (!conf.jwks_path) return;
  const tmp = `${conf.jwks_path}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(jwks, null, 1), { mode: 0o600 });
  fs.renameSync(tmp, conf.jwks_path);
}

let jwks = loadKeys();

const KTY = { rsa: 'RSA', ec: 'EC', ed: 'OKP' };

// the key of that type the provider signs with: the first one
function keyOf(type) {
  return jwks.keys.find((k) => k.kty === KTY[type]);
}


// storage: kept across provider rebuilds (rotation, new clients), so
// sessions, grants and codes survive them; no size limit, unlike the
// bundled LRU-backed adapter

const store = new Map();

function storeGet(key) {
  const e = store.get(key);
  if (!e) return undefined;
  if (e.exp && e.exp <= Date.now()) {
    store.delete(key);
    return undefined;
  }
  return e.value;
}

function storeSet(key, value, expiresIn) {
  store.set(key, { value, exp: expiresIn ? Date.now() + expiresIn * 1000 : 0 });
}

setInterval(() => {
  const now = Date.now();
  for (const [k, e] of store) {
    if (e.exp && e.exp <= now) store.delete(k);
  }
}, 30000).unref();

const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken',
  'DeviceCode', 'BackchannelAuthenticationRequest']);

class Adapter {
  constructor(model) { this.model = model; }

  key(id) { return `${this.model}:${id}`; }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    if (this.model === 'Session') storeSet(`sessionUid:${payload.uid}`, id, expiresIn);
    if (payload.userCode) storeSet(`userCode:${payload.userCode}`, id, expiresIn);
    if (GRANTABLE.has(this.model) && payload.grantId) {
      const gk = `grant:${payload.grantId}`;
      const list = storeGet(gk) || [];
      list.push(key);
      storeSet(gk, list, 0);
    }
    storeSet(key, payload, expiresIn);
  }

  async find(id) { return storeGet(this.key(id)); }

  async findByUid(uid) {
    const id = storeGet(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(code) {
    const id = storeGet(`userCode:${code}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const v = storeGet(this.key(id));
    if (v) v.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { store.delete(this.key(id)); }

  async revokeByGrantId(grantId) {
    const gk = `grant:${grantId}`;
    for (const k of storeGet(gk) || []) store.delete(k);
    store.delete(gk);
  }
}


// accounts, claims, resources

let accounts = { ...(conf.accounts || {}) };

const STANDARD_PROFILE = ['name', 'given_name', 'family_name', 'middle_name', 'nickname',
  'preferred_username', 'profile', 'picture', 'website', 'gender', 'birthdate',
  'zoneinfo', 'locale', 'updated_at'];

function claimsConfig() {
  if (conf.claims) return conf.claims;
  const known = new Set(['sub', 'email', 'email_verified', 'groups', ...STANDARD_PROFILE]);
  const extra = new Set();
  for (const claims of Object.values(accounts)) {
    for (const k of Object.keys(claims || {})) {
      if (!known.has(k)) extra.add(k);
    }
  }
  return {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: [...STANDARD_PROFILE, ...extra],
    groups: ['groups'],
  };
}

const resources = conf.resources || {
  'https://api.example.com': { scope: 'api:read api:write' },
};

const accessTokenClaims = conf.access_token_claims || ['email', 'groups'];

const ttl = {
  AccessToken: 600,
  AuthorizationCode: 60,
  ClientCredentials: 600,
  IdToken: 600,
  Interaction: 600,
  Session: 86400,
  Grant: 86400,
  RefreshToken: 86400,
  ...(conf.ttl || {}),
};

let clients = conf.clients || [];


// the provider, rebuilt when keys or clients change

function configuration() {
  const caCert = conf.ca ? fs.readFileSync(conf.ca) : undefined;
  const agent = new https.Agent({ ca: caCert, keepAlive: false });
  const httpAgent = new http.Agent({ keepAlive: false });
  const claims = claimsConfig();
  return {
    adapter: Adapter,
    clients,
    jwks,
    claims,
    scopes: ['openid', 'offline_access', ...Object.keys(claims).filter((s) => s !== 'openid')],
    conformIdTokenClaims: false,
    cookies: {
      keys: conf.cookie_keys || ['ent-test-cookie-key'],
      long: { signed: true, httpOnly: true, sameSite: 'none' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    pkce: { methods: ['S256'], required: () => true },
    ttl,
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount(ctx, sub) {
      const account = accounts[sub];
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims() { return { ...account, sub }; },
      };
    },
    async extraTokenClaims(ctx, token) {
      const account = token.accountId && accounts[token.accountId];
      if (!account) return undefined;
      const out = {};
      for (const c of accessTokenClaims) {
        if (account[c] !== undefined) out[c] = account[c];
      }
      return out;
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // the form is only what oidc-provider needs: an xsrf token; we ask
        // to end the whole session (logout=yes) and submit it with script;
        // a client without script (the tests) posts it: EntOP::op_logout
        async logoutSource(ctx, form) {
          const withYes = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>');
          ctx.body = '<!DOCTYPE html><html><head><title>Sign out</title></head><body>'
            + `<h1>Sign out</h1>${withYes}`
            + '<script>document.forms[0].submit()</script></body></html>';
        },
        async postLogoutSuccessSource(ctx) {
          ctx.body = '<!DOCTYPE html><html><head><title>Signed out</title></head>'
            + '<body><h1 id="signed-out">Signed out</h1></body></html>';
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo(ctx, indicator) {
          const rs = resources[indicator];
          if (!rs) throw new errors.InvalidTarget();
          return {
            scope: rs.scope || '',
            audience: rs.audience || indicator,
            accessTokenTTL: rs.ttl || ttl.AccessToken,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: rs.alg || 'RS256' } },
          };
        },
      },
    },
    httpOptions(url) {
      // backchannel logout and the like: every name is on loopback here,
      // and https is verified against the test CA
      return {
        agent: url.protocol === 'https:' ? agent : httpAgent,
        signal: AbortSignal.timeout(5000),
        dnsLookup: (hostname, options, cb) => {
          const callback = typeof options === 'function' ? options : cb;
          if (options && options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
          else callback(null, '127.0.0.1', 4);
        },
      };
    },
  };
}

const stats = {};

function count(key) {
  stats[key] = (stats[key] || 0) + 1;
}

async function build() {
  const p = new Provider(conf.issuer, configuration());
  p.proxy = false;
  // static clients are validated when first used: do it now
  for (const c of clients) {
    const client = await p.Client.find(c.client_id);
    if (!client) throw new Error(`client ${c.client_id} did not load`);
  }
  p.on('server_error', (ctx, err) => log('server_error', err.stack || err));
  for (const ev of ['backchannel.success', 'end_session.success', 'grant.success',
    'authorization.success', 'interaction.ended']) {
    p.on(ev, () => count(`event:${ev}`));
  }
  p.on('backchannel.error', (ctx, err, client) => {
    count('event:backchannel.error');
    log('backchannel.error', client.clientId, err.message);
  });
  for (const ev of ['authorization.error', 'grant.error', 'end_session.error',
    'end_session_confirm.error', 'introspection.error', 'userinfo.error']) {
    p.on(ev, (ctx, err) => log(ev, err.message, err.error_description || ''));
  }
  return p;
}

let provider;
let handler;

async function rebuild() {
  const p = await build();
  provider = p;
  handler = p.callback();
}


// HTTP plumbing

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res, status, body, type = 'application/json') {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

function html(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}


// interactions

function interactionPage(uid, details, message) {
  const { prompt, params } = details;
  return '<!DOCTYPE html><html><head><title>Sign in</title></head><body>'
    + '<h1>ent test OP: sign in</h1>'
    + (message ? `<p id="error">${html(message)}</p>` : '')
    + `<p>interaction <code id="uid">${html(uid)}</code>`
    + ` prompt <code id="prompt">${html(prompt.name)}</code>`
    + ` client <code id="client">${html(params.client_id)}</code>`
    + ` scope <code id="scope">${html(params.scope || '')}</code></p>`
    + `<form id="login" method="post" action="/interaction/${html(uid)}/login">`
    + '<input name="login" autofocus/><button type="submit">Sign in</button></form>'
    + `<form id="abort" method="post" action="/interaction/${html(uid)}/abort">`
    + '<button type="submit">Cancel</button></form></body></html>';
}

async function interaction(req, res, path) {
  const m = path.match(/^\/interaction\/([^/]+)(?:\/(login|abort))?$/);
  if (!m) return send(res, 404, { error: 'not_found' });
  const [, uid, action] = m;

  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    return send(res, 400, `<p id="error">${html(err.message)}</p>`, 'text/html');
  }
  if (details.uid !== uid) {
    return send(res, 400, '<p id="error">interaction mismatch</p>', 'text/html');
  }

  if (!action) {
    if (req.method !== 'GET') return send(res, 405, { error: 'method' });
    return send(res, 200, interactionPage(uid, details), 'text/html; charset=utf-8');
  }
  if (req.method !== 'POST') return send(res, 405, { error: 'method' });

  const form = querystring.parse(await readBody(req));

  if (action === 'abort') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
  }

  const sub = String(form.login || '');
  if (!accounts[sub]) {
    return send(res, 403, interactionPage(uid, details, 'unknown account'),
      'text/html; charset=utf-8');
  }

  // consent to everything asked: the OIDC scopes, the claims of a claims
  // parameter, the scopes of each resource indicated
  const { params } = details;
  let grant;
  if (details.grantId) {
    grant = await provider.Grant.find(details.grantId);
    if (grant && grant.accountId !== sub) grant = undefined;
  }
  if (!grant) {
    grant = new provider.Grant({ accountId: sub, clientId: params.client_id });
  }
  if (params.scope) grant.addOIDCScope(params.scope);
  if (params.claims) {
    try {
      const req = JSON.parse(params.claims);
      const names = new Set([...Object.keys(req.id_token || {}), ...Object.keys(req.userinfo || {})]);
      if (names.size) grant.addOIDCClaims([...names]);
    } catch { /* the provider rejected it already */ }
  }
  for (const r of [].concat(params.resource || [])) {
    if (resources[r]) grant.addResourceScope(r, resources[r].scope || '');
  }
  const grantId = await grant.save();

  const login = { accountId: sub };
  if (form.acr) login.acr = String(form.acr);
  if (form.amr) login.amr = String(form.amr).split(/[ ,]+/);
  return provider.interactionFinished(req, res, { login, consent: { grantId } },
    { mergeWithLastSubmission: false });
}


// test endpoints

const SIGNERS = {
  RS256: ['RSA', 'sha256', {}],
  RS384: ['RSA', 'sha384', {}],
  RS512: ['RSA', 'sha512', {}],
  PS256: ['RSA', 'sha256', { padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }],
  PS384: ['RSA', 'sha384', { padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 }],
  PS512: ['RSA', 'sha512', { padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 64 }],
  ES256: ['EC', 'sha256', { dsaEncoding: 'ieee-p1363' }],
  EdDSA: ['OKP', null, {}],
};

function sign(body) {
  const type = body.key || 'rsa';
  const claims = body.claims || {};
  const rsa = keyOf('rsa');
  let header;
  let signer;
  if (type === 'none') {
    header = { alg: 'none', typ: 'JWT' };
  } else if (type === 'hs-pub') {
    header = { alg: 'HS256', typ: 'JWT', kid: rsa.kid };
    const pem = crypto.createPublicKey({ key: rsa, format: 'jwk' })
      .export({ type: 'spki', format: 'pem' });
    signer = (data) => crypto.createHmac('sha256', pem).update(data).digest();
  } else if (KTY[type]) {
    const jwk = keyOf(type);
    header = { alg: jwk.alg, typ: 'JWT', kid: jwk.kid };
    const key = crypto.createPrivateKey({ key: jwk, format: 'jwk' });
    signer = (data, alg) => {
      // sign with the header's alg when it fits the key, else the key's own
      const s = SIGNERS[alg] && SIGNERS[alg][0] === jwk.kty ? SIGNERS[alg] : SIGNERS[jwk.alg];
      return crypto.sign(s[1], data, { key, ...s[2] });
    };
  } else {
    throw new Error(`unknown key type ${type}`);
  }
  for (const [k, v] of Object.entries(body.header || {})) {
    if (v === null) delete header[k];
    else header[k] = v;
  }
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
  const sig = signer ? b64u(signer(Buffer.from(input), header.alg)) : '';
  return { token: `${input}.${sig}`, header };
}

const faults = {};

async function test(req, res, path) {
  const body = req.method === 'POST' ? await readBody(req) : '';
  let json = {};
  if (body) {
    try {
      json = JSON.parse(body);
    } catch {
      return send(res, 400, { error: 'invalid JSON' });
    }
  }
  try {
    if (path === '/test/sign' && req.method === 'POST') {
      return send(res, 200, sign(json));
    }
    if (path === '/test/stats' && req.method === 'GET') {
      return send(res, 200, stats);
    }
    if (path === '/test/stats/reset' && req.method === 'POST') {
      for (const k of Object.keys(stats)) delete stats[k];
      return send(res, 200, {});
    }
    if (path === '/test/rotate' && req.method === 'POST') {
      const key = newKey('rsa');
      const rest = json.retire ? jwks.keys.filter((k) => k.kty !== 'RSA') : jwks.keys;
      const old = jwks;
      jwks = { keys: [key, ...rest] };
      try {
        await rebuild();
      } catch (err) {
        jwks = old;
        throw err;
      }
      saveKeys(jwks);
      log('rotated: RSA key', key.kid, 'signs now');
      return send(res, 200, { kid: key.kid, kids: jwks.keys.map((k) => k.kid) });
    }
    if (path === '/test/clients' && req.method === 'POST') {
      const old = clients;
      clients = json.clients || [];
      try {
        await rebuild();
      } catch (err) {
        clients = old;
        await rebuild();
        return send(res, 400, { error: err.message, error_description: err.error_description });
      }
      return send(res, 200, { clients: clients.map((c) => c.client_id) });
    }
    if (path === '/test/accounts' && req.method === 'POST') {
      for (const [sub, claims] of Object.entries(json)) {
        if (claims === null) delete accounts[sub];
        else accounts[sub] = claims;
      }
      accounts = { ...accounts };
      await rebuild(); // new claim names may need a place in the claims config
      return send(res, 200, { accounts: Object.keys(accounts) });
    }
    if (path === '/test/fault' && req.method === 'POST') {
      if (!json.path) {
        for (const k of Object.keys(faults)) delete faults[k];
      } else if (json.status || json.body !== undefined || json.delay_ms) {
        faults[json.path] = { ...json };
      } else {
        delete faults[json.path];
      }
      return send(res, 200, faults);
    }
  } catch (err) {
    log('test endpoint', path, err.stack || err);
    return send(res, 500, { error: err.message });
  }
  return send(res, 404, { error: 'not_found' });
}

// counted under the path, with the ids of interactions and resumed
// authorizations taken out
function statKey(path) {
  if (path.startsWith('/interaction/')) return '/interaction';
  if (/^\/auth\/[^/]+$/.test(path)) return '/auth/resume';
  return path;
}

async function serve(req, res) {
  const start = Date.now();
  const path = new URL(req.url, conf.issuer).pathname;
  res.on('finish', () => {
    log(req.method, req.url.length > 200 ? `${req.url.slice(0, 200)}...` : req.url,
      res.statusCode, `${Date.now() - start}ms`);
  });

  if (path.startsWith('/test/')) return test(req, res, path);

  count(statKey(path));

  const fault = faults[path];
  if (fault) {
    if (fault.times !== undefined && --fault.times <= 0) delete faults[path];
    if (fault.delay_ms) await new Promise((r) => { setTimeout(r, fault.delay_ms); });
    if (fault.status || fault.body !== undefined) {
      return send(res, fault.status || 200, fault.body === undefined ? '' : String(fault.body),
        fault.content_type || 'application/json');
    }
  }

  if (path.startsWith('/interaction/')) return interaction(req, res, path);
  return handler(req, res);
}

try {
  await rebuild();
} catch (err) {
  log('configuration error:', err.message, err.error_description || '');
  process.exit(1);
}

const server = https.createServer({
  cert: fs.readFileSync(conf.tls.cert),
  key: fs.readFileSync(conf.tls.key),
}, (req, res) => {
  serve(req, res).catch((err) => {
    log('error', req.method, req.url, err.stack || err);
    if (!res.headersSent) send(res, 500, { error: 'server_error' });
    else res.destroy();
  });
});
server.keepAliveTimeout = 5000;
server.listen(conf.port, conf.host || '127.0.0.1', () => {
  log(`listening, issuer ${conf.issuer}, oidc-provider with keys`,
    jwks.keys.map((k) => `${k.kty}:${k.kid}`).join(' '));
});
