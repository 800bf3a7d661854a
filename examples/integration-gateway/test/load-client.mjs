// One worker thread of the cold-start load test's client (cold-start-load.test.ts): it sends the
// requests it is given open-loop, each at its due instant, and posts their answers back in batches.
// The client runs in workers, not in the test's own event loop: at a landing thousands of waiters
// are answered at once, and a single client loop reading them all stalled for 150-500 ms, so the
// requests due meanwhile left late and were counted as slow answers of the gateways.
//
// Messages in: { type: 'send', phase, requests: [index, url, localAddress, dueEpochMs][] } and
// { type: 'stop', phase } (send no more of that phase). Messages out: { type: 'batch', phase, sent:
// index[], answers: [index, Answer][], resetsRetried, lagP99Ms, lagMaxMs } every 20 ms while there is news. Times are epoch ms
// (performance.timeOrigin + performance.now(): one clock across threads).
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';

/** This worker's event-loop delay (posted with each batch: the client must not be the bottleneck). */
const lag = monitorEventLoopDelay({ resolution: 5 });
lag.enable();

const now = () => performance.timeOrigin + performance.now();
const agents = new Map();
const agentOf = (address) => {
  let a = agents.get(address);
  if (!a) {
    a = new http.Agent({ keepAlive: true, maxSockets: 64 });
    agents.set(address, a);
  }
  return a;
};

/** Per phase: news to post, and whether it was stopped. */
const phases = new Map();
const phaseOf = (id) => {
  let p = phases.get(id);
  if (!p) {
    p = { sent: [], answers: [], stopped: false, resetsRetried: 0 };
    phases.set(id, p);
  }
  return p;
};

/**
 * One GET, timed from its due instant. A reset of a reused keep-alive socket (the server closed it
 * as the request left) is retried once, as Node's documentation advises for idempotent requests; so
 * is a reset of a new connection (the gateways' accept queues overflow when their event loops
 * stall in the first seconds; those are counted).
 */
function get(phase, url, localAddress, due, retried = false) {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: agentOf(localAddress), localAddress }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => {
        const at = now();
        let code;
        if (res.statusCode !== 200) {
          try {
            code = JSON.parse(body).error?.code;
          } catch {}
        }
        resolve({
          status: res.statusCode ?? 0,
          level: res.headers['x-cache-level'] ?? null,
          ms: at - due,
          at,
          code,
        });
      });
    });
    req.on('error', (e) => {
      if (!retried && e.code === 'ECONNRESET') {
        if (!req.reusedSocket) phase.resetsRetried++;
        resolve(get(phase, url, localAddress, due, true));
        return;
      }
      const at = now();
      resolve({ status: 0, level: null, ms: at - due, at, code: e.message });
    });
  });
}

function send(id, requests) {
  const phase = phaseOf(id);
  let i = 0;
  const tick = () => {
    const t = now();
    for (; i < requests.length && !phase.stopped; i++) {
      const [index, url, localAddress, due] = requests[i];
      if (due > t) break;
      phase.sent.push(index);
      get(phase, url, localAddress, due).then((answer) => phase.answers.push([index, answer]));
    }
    if (i < requests.length && !phase.stopped) setTimeout(tick, 5);
  };
  tick();
}

const flush = setInterval(() => {
  for (const [id, p] of phases) {
    if (p.sent.length === 0 && p.answers.length === 0) continue;
    parentPort.postMessage({
      type: 'batch',
      phase: id,
      sent: p.sent,
      answers: p.answers,
      resetsRetried: p.resetsRetried,
      lagP99Ms: lag.percentile(99) / 1e6,
      lagMaxMs: lag.max / 1e6,
    });
    p.sent = [];
    p.answers = [];
  }
}, 20);

parentPort.on('message', (m) => {
  if (m.type === 'send') send(m.phase, m.requests);
  else if (m.type === 'stop') phaseOf(m.phase).stopped = true;
  else if (m.type === 'close') {
    clearInterval(flush);
    for (const a of agents.values()) a.destroy();
    parentPort.close();
  }
});
