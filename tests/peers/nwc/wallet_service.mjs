// NWC (NIP-47) wallet service for local tests.
//
// The protocol side (subscribe to kind 23194, NIP-04/NIP-44 decrypt, dispatch,
// encrypt + sign + publish kind 23195, info event 13194) is done entirely by
// @getalby/sdk's NWCWalletService. This file only supplies the request
// handler: a fake Lightning backend that issues real-format, correctly signed
// BOLT11 invoices (npm `bolt11`, signed with a throwaway node key) and keeps
// them in memory.
//
// Usage: node wallet_service.mjs   (configured through environment variables)
//   NWC_RELAY_URL        ws://127.0.0.1:7100           (required)
//   NWC_STATE_DIR        dir for keys.json / uri.txt   (required)
//   NWC_CONTROL_PORT     loopback HTTP control port (0 = off)  default 0
//   NWC_NETWORK          bc | tb | bcrt | tbs           default bc (lnbc...)
//   NWC_WALLET_SECRET, NWC_CLIENT_SECRET, NWC_NODE_SECRET  optional fixed hex keys
//                        (default: reuse NWC_STATE_DIR/keys.json if present, else random;
//                         NWC_FRESH_KEYS=1 forces new random keys)
//   NWC_BALANCE_MSAT     initial balance reported by get_balance, default 21000000
//   NWC_AUTOSETTLE_MS    if >0, every invoice is settled this many ms after creation
//   NWC_LOG              1 = log every request to stderr
//   NWC_NO_INFO_EVENT    1 = do not publish the kind-13194 info event
//   NWC_INFO_REPUBLISH_S re-publish the info event every N s (default 5, 0 = once)
//
// Test hooks (put in make_invoice `description`):
//   "nwc-peer:error:<CODE>"   -> NIP-47 error response with that code
//   "nwc-peer:delay:<ms>"     -> answer after <ms> milliseconds
//   "nwc-peer:settle:<ms>"    -> settle (and notify) <ms> after creation
//   "nwc-peer:noreply"        -> never answer (client-side timeout test)
// Control HTTP API (127.0.0.1:NWC_CONTROL_PORT, only when enabled):
//   GET /health                      -> {"ok":true,"subscribed":bool,...}
//   GET /invoices                    -> all invoices
//   POST|GET /settle/<payment_hash>  -> mark settled + publish payment_received
//        ?settled_at=<JSON value>    -> report this settled_at instead of the time of settling
//                                       (a past unix time, or a malformed value such as "x")
//   POST|GET /fail-next/<CODE>       -> the next request of any method fails with CODE
//   POST|GET /mute/<0|1>             -> 1 = stop answering all requests (service "down")
//   POST|GET /unauthorized/<0|1>     -> 1 = answer every request UNAUTHORIZED (a revoked
//                                       connection), until turned off
//   POST|GET /garble-next/<MODE>     -> the next answer of any method is malformed:
//        notjson   the encrypted content is not JSON at all
//        missing   every field of the result is missing but the invoice (if it has one)
//        wrongtype the result's fields have the wrong JSON types

if (!globalThis.WebSocket) {
  // Node < 22 has no global WebSocket; nostr-tools (bundled inside @getalby/sdk)
  // reads the global at module load, so this MUST happen before the import below.
  globalThis.WebSocket = (await import("ws")).default;
}
const { NWCWalletService, NWCWalletServiceKeyPair } = await import("@getalby/sdk/nwc");
const bolt11 = (await import("bolt11")).default;
const crypto = await import("node:crypto");
const fs = await import("node:fs");
const path = await import("node:path");
const http = await import("node:http");

const env = process.env;
const relayUrl = env.NWC_RELAY_URL;
const stateDir = env.NWC_STATE_DIR;
if (!relayUrl || !stateDir) {
  console.error("NWC_RELAY_URL and NWC_STATE_DIR are required");
  process.exit(2);
}
const controlPort = parseInt(env.NWC_CONTROL_PORT || "0", 10);
const hrpNet = env.NWC_NETWORK || "bc";
const autosettleMs = parseInt(env.NWC_AUTOSETTLE_MS || "0", 10);
const verbose = env.NWC_LOG === "1";
let balanceMsat = parseInt(env.NWC_BALANCE_MSAT || "21000000", 10);

// secp256k1 keys via node:crypto (no extra deps). Nostr pubkeys are x-only (BIP-340):
// the compressed SEC1 key minus its 02/03 prefix byte.
const compressedPub = (secretHex) => {
  const ecdh = crypto.createECDH("secp256k1");
  ecdh.setPrivateKey(Buffer.from(secretHex, "hex"));
  return ecdh.getPublicKey("hex", "compressed");
};
const hexKey = (v) => {
  if (v) return v.toLowerCase();
  for (;;) { // reject the (astronomically unlikely) out-of-range scalar
    const k = crypto.randomBytes(32).toString("hex");
    try { compressedPub(k); return k; } catch {}
  }
};
fs.mkdirSync(stateDir, { recursive: true });
// Keys: explicit env > previous run's keys.json in NWC_STATE_DIR (stable URI across restarts,
// unless NWC_FRESH_KEYS=1) > new random keys.
let saved = {};
const keysFile = path.join(stateDir, "keys.json");
if (env.NWC_FRESH_KEYS !== "1" && fs.existsSync(keysFile)) {
  try { saved = JSON.parse(fs.readFileSync(keysFile, "utf8")); } catch {}
}
const walletSecret = hexKey(env.NWC_WALLET_SECRET || saved.wallet_secret);
const clientSecret = hexKey(env.NWC_CLIENT_SECRET || saved.client_secret);
const nodeSecret = hexKey(env.NWC_NODE_SECRET || saved.node_secret);
const clientPubkey = compressedPub(clientSecret).slice(2);
const walletPubkey = compressedPub(walletSecret).slice(2);
const nodePubkey = compressedPub(nodeSecret);

const uri = `nostr+walletconnect://${walletPubkey}?relay=${encodeURIComponent(relayUrl)}&secret=${clientSecret}`;
fs.writeFileSync(keysFile, JSON.stringify({
  wallet_pubkey: walletPubkey, wallet_secret: walletSecret,
  client_pubkey: clientPubkey, client_secret: clientSecret,
  node_pubkey: nodePubkey, node_secret: nodeSecret, relay: relayUrl, uri,
}, null, 2));

const NETWORKS = {
  bc: { bech32: "bc", pubKeyHash: 0x00, scriptHash: 0x05, validWitnessVersions: [0, 1] },
  tb: { bech32: "tb", pubKeyHash: 0x6f, scriptHash: 0xc4, validWitnessVersions: [0, 1] },
  bcrt: { bech32: "bcrt", pubKeyHash: 0x6f, scriptHash: 0xc4, validWitnessVersions: [0, 1] },
  tbs: { bech32: "tbs", pubKeyHash: 0x6f, scriptHash: 0xc4, validWitnessVersions: [0, 1] },
};
const NETWORK_NAMES = { bc: "mainnet", tb: "testnet", bcrt: "regtest", tbs: "signet" };
if (!NETWORKS[hrpNet]) { console.error("bad NWC_NETWORK", hrpNet); process.exit(2); }

const invoices = new Map(); // payment_hash -> tx
let failNext = null;
let muted = false;
let unauthorized = false;
let garbleNext = null;    // "notjson" | "missing" | "wrongtype"
let garbleContent = false; // set by "notjson": the next response's encrypted content
const now = () => Math.floor(Date.now() / 1000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const err = (code, message) => ({ result: undefined, error: { code, message } });
const ok = (result) => ({ result, error: undefined });
const log = (...a) => { if (verbose) console.error(new Date().toISOString(), ...a); };

function makeBolt11({ amountMsat, description, descriptionHash, expiry }) {
  const preimage = crypto.randomBytes(32);
  const paymentHash = crypto.createHash("sha256").update(preimage).digest("hex");
  const timestamp = now();
  const tags = [
    { tagName: "payment_hash", data: paymentHash },
    { tagName: "payment_secret", data: crypto.randomBytes(32).toString("hex") },
    descriptionHash
      ? { tagName: "purpose_commit_hash", data: descriptionHash }
      : { tagName: "description", data: description || "" },
    { tagName: "expire_time", data: expiry },
    { tagName: "min_final_cltv_expiry", data: 80 },
    {
      tagName: "feature_bits",
      data: {
        word_length: 4,
        var_onion_optin: { required: true, supported: false },
        payment_secret: { required: true, supported: false },
        basic_mpp: { required: false, supported: true },
      },
    },
  ];
  const encoded = bolt11.encode({
    network: NETWORKS[hrpNet],
    millisatoshis: String(amountMsat),
    timestamp,
    tags,
  }, false);
  const signed = bolt11.sign(encoded, nodeSecret);
  return { invoice: signed.paymentRequest, paymentHash, preimage: preimage.toString("hex"), timestamp };
}

function hook(description) {
  const m = /^nwc-peer:(error|delay|settle|noreply)(?::(.*))?$/.exec(description || "");
  return m ? { kind: m[1], arg: m[2] } : null;
}

// @getalby/sdk 8.0.3 publishes each response with an un-awaited Promise.any(...); if the
// relay rejects it (e.g. rate limit), the rejection is unhandled and would kill Node.
process.on("unhandledRejection", (e) => console.error("unhandled rejection (kept running):", e?.errors ?? e));

let service;
const keypair = new NWCWalletServiceKeyPair(walletSecret, clientPubkey);

async function publishNotification(tx, type = "payment_received") {
  const content = JSON.stringify({ notification_type: type, notification: tx });
  // NIP-47: kind 23197 = NIP-44 encrypted, kind 23196 = legacy NIP-04. Publish both.
  for (const [kind, enc] of [[23197, "nip44_v2"], [23196, "nip04"]]) {
    const ev = await service.signEvent({
      kind, created_at: now(), tags: [["p", clientPubkey]],
      content: await service.encrypt(keypair, content, enc),
    }, walletSecret);
    await Promise.any(service.pool.publish(service.relayUrls, ev));
  }
  log("notification", type, tx.payment_hash);
}

async function settle(paymentHash, settledAt) {
  const tx = invoices.get(paymentHash);
  if (!tx) return null;
  if (tx.state !== "settled") {
    tx.state = "settled";
    tx.settled_at = settledAt === undefined ? now() : settledAt;
    balanceMsat += tx.amount;
    await publishNotification(tx);
  }
  return tx;
}

// Wraps every handler: mute (service down), fail-next, logging.
function wrap(name, fn) {
  return async (req) => {
    log("request", name, JSON.stringify(req ?? {}));
    if (muted) return new Promise(() => {}); // never answers
    if (unauthorized) return err("UNAUTHORIZED", "no wallet connection for this key");
    if (failNext) { const c = failNext; failNext = null; return err(c, `forced ${c} via control API`); }
    let response;
    try { response = await fn(req || {}); }
    catch (e) { return err("INTERNAL", String(e && e.message || e)); }
    const mode = garbleNext;
    garbleNext = null;
    if (mode === "notjson") garbleContent = true;
    if (mode === "missing") { // every field gone but the invoice, if there is one
      const invoice = response.result?.invoice;
      return ok(invoice ? { invoice } : {});
    }
    if (mode === "wrongtype") {
      return ok({ ...response.result, invoice: 42, payment_hash: 7, amount: "lots", state: 5,
                  created_at: "yesterday", balance: "plenty", pubkey: 9 });
    }
    return response;
  };
}

const handler = {
  getInfo: wrap("get_info", async () => ok({
    alias: "nwc-peer fake wallet",
    color: "#3399ff",
    pubkey: nodePubkey,
    network: NETWORK_NAMES[hrpNet],
    block_height: 840000,
    block_hash: "00".repeat(32),
    methods: ["get_info", "get_balance", "make_invoice", "lookup_invoice", "list_transactions"],
    notifications: ["payment_received"],
  })),
  getBalance: wrap("get_balance", async () => ok({ balance: balanceMsat })),
  makeInvoice: wrap("make_invoice", async (req) => {
    const h = hook(req.description);
    if (h?.kind === "noreply") return new Promise(() => {});
    if (h?.kind === "error") return err(h.arg || "INTERNAL", `simulated ${h.arg || "INTERNAL"} error`);
    if (h?.kind === "delay") await sleep(parseInt(h.arg || "0", 10));
    const amount = Number(req.amount);
    if (!Number.isInteger(amount) || amount <= 0) return err("OTHER", "amount (msat) must be a positive integer");
    if (amount % 1000 !== 0) return err("OTHER", "this fake wallet only issues whole-sat invoices");
    const expiry = Number(req.expiry) > 0 ? Number(req.expiry) : 3600;
    const inv = makeBolt11({ amountMsat: amount, description: req.description, descriptionHash: req.description_hash, expiry });
    const tx = {
      type: "incoming", state: "pending", invoice: inv.invoice,
      description: req.description || "", description_hash: req.description_hash || "",
      preimage: inv.preimage, payment_hash: inv.paymentHash, amount, fees_paid: 0,
      created_at: inv.timestamp, expires_at: inv.timestamp + expiry, settled_at: null,
      metadata: req.metadata || undefined,
    };
    invoices.set(inv.paymentHash, tx);
    const settleMs = h?.kind === "settle" ? parseInt(h.arg || "0", 10) : autosettleMs;
    if (settleMs > 0) setTimeout(() => settle(inv.paymentHash).catch((e) => console.error(e)), settleMs);
    return ok(tx);
  }),
  lookupInvoice: wrap("lookup_invoice", async (req) => {
    let tx = req.payment_hash ? invoices.get(req.payment_hash) : undefined;
    if (!tx && req.invoice) tx = [...invoices.values()].find((t) => t.invoice === req.invoice);
    if (!tx) return err("NOT_FOUND", "invoice not found");
    if (tx.state === "pending" && tx.expires_at < now()) tx.state = "expired";
    return ok(tx);
  }),
  listTransactions: wrap("list_transactions", async (req) => {
    let txs = [...invoices.values()].sort((a, b) => b.created_at - a.created_at);
    if (req.unpaid !== true) txs = txs.filter((t) => t.state === "settled");
    if (req.from) txs = txs.filter((t) => t.created_at >= req.from);
    if (req.until) txs = txs.filter((t) => t.created_at <= req.until);
    const off = req.offset || 0;
    txs = txs.slice(off, req.limit ? off + req.limit : undefined);
    return ok({ transactions: txs, total_count: txs.length });
  }),
  // payInvoice / payKeysend / signMessage deliberately absent:
  // NWCWalletService answers them with error code NOT_IMPLEMENTED.
};

service = new NWCWalletService({ relayUrls: [relayUrl] });
// "notjson": the service JSON-encodes every answer; replace the next answer's plaintext just
// before it is encrypted (notifications are left alone).
const encryptAnswer = service.encrypt.bind(service);
service.encrypt = (kp, content, enc) => {
  if (garbleContent && content.startsWith('{"result_type"')) {
    garbleContent = false;
    content = "<html>502 Bad Gateway</html>";
  }
  return encryptAnswer(kp, content, enc);
};
// Readiness for tests: `service.connected` is also true when only a publish has reconnected
// the relay while the request subscription still waits out its reconnect backoff (1 s, 2 s,
// 4 s, ...). The pool calls onconnect right before it sends the subscription's REQ, so track
// that (exposed as `subscribed` by GET /health).
let subscribed = false;
const poolSubscribe = service.pool.subscribe.bind(service.pool);
service.pool.subscribe = (relays, filter, params) => poolSubscribe(relays, filter, {
  ...params,
  onconnect: (url) => { subscribed = true; params?.onconnect?.(url); },
  ondisconnect: (url, reason) => { subscribed = false; params?.ondisconnect?.(url, reason); },
});
// Info event (kind 13194, replaceable). rust-nostr's client does not need it; @getalby/sdk's
// NWCClient does. The relay is in-memory, so it is re-published periodically to survive a
// relay restart (NWC_INFO_REPUBLISH_S, default 5; 0 = once). NWC_NO_INFO_EVENT=1 skips it.
const publishInfo = () => service.publishWalletServiceInfoEvent(
  walletSecret,
  ["get_info", "get_balance", "make_invoice", "lookup_invoice", "list_transactions", "notifications"],
  ["payment_received"],
);
if (env.NWC_NO_INFO_EVENT !== "1") {
  await publishInfo();
  const every = parseInt(env.NWC_INFO_REPUBLISH_S ?? "5", 10);
  if (every > 0) setInterval(() => publishInfo().catch(() => {}), every * 1000).unref();
}
const unsub = await service.subscribe(keypair, handler);

let server;
if (controlPort > 0) {
  server = http.createServer(async (req, res) => {
    const send = (code, obj) => { res.writeHead(code, { "content-type": "application/json" }); res.end(JSON.stringify(obj)); };
    const parts = req.url.split("?")[0].split("/").filter(Boolean);
    const query = new URL(req.url, "http://control").searchParams;
    try {
      if (parts[0] === "health") return send(200, { ok: true, connected: service.connected, subscribed, wallet_pubkey: walletPubkey, uri });
      if (parts[0] === "invoices") return send(200, [...invoices.values()]);
      if (parts[0] === "settle" && parts[1]) {
        const raw = query.get("settled_at");
        const tx = await settle(parts[1], raw === null ? undefined : JSON.parse(raw));
        return tx ? send(200, tx) : send(404, { error: "not found" });
      }
      if (parts[0] === "fail-next" && parts[1]) { failNext = parts[1]; return send(200, { fail_next: failNext }); }
      if (parts[0] === "mute" && parts[1]) { muted = parts[1] === "1"; return send(200, { muted }); }
      if (parts[0] === "unauthorized" && parts[1]) { unauthorized = parts[1] === "1"; return send(200, { unauthorized }); }
      if (parts[0] === "garble-next" && ["notjson", "missing", "wrongtype"].includes(parts[1])) {
        garbleNext = parts[1]; return send(200, { garble_next: garbleNext });
      }
      return send(404, { error: "unknown endpoint" });
    } catch (e) { return send(500, { error: String(e) }); }
  });
  await new Promise((r) => server.listen(controlPort, "127.0.0.1", r));
}

fs.writeFileSync(path.join(stateDir, "uri.txt"), uri + "\n");
console.log(`NWC wallet service ready: wallet_pubkey=${walletPubkey} relay=${relayUrl}` +
  (controlPort ? ` control=http://127.0.0.1:${controlPort}` : ""));
console.log(uri);

const shutdown = () => {
  log("shutting down");
  try { unsub(); } catch {}
  try { service.close(); } catch {}
  if (server) server.close();
  setTimeout(() => process.exit(0), 100);
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
