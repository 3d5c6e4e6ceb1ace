// http-inspector's preload for Node (`NODE_OPTIONS=--require .../node-proxy.cjs`, set by
// `inspector run` and `inspector env`). Node before 22.21 and 24 ignores HTTP(S)_PROXY: its
// fetch (undici) and its http/https modules connect directly. This sends both through the
// proxy the variables name, with a CONNECT tunnel per connection (plain http too), and
// leaves TLS verification to Node, which trusts NODE_EXTRA_CA_CERTS. NO_PROXY is honoured.
// Where Node reads the variables itself (NODE_USE_ENV_PROXY=1 on 22.21+ and 24+), or none
// is set, it does nothing. It never throws: a program must run as it would without it.
'use strict';

(function routeThroughProxy() {
  const env = process.env;
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (env.NODE_USE_ENV_PROXY === '1' && (major >= 24 || (major === 22 && minor >= 21))) return;
  const proxies = { 'http:': proxyUrl('http_proxy'), 'https:': proxyUrl('https_proxy') };
  if (!proxies['http:'] && !proxies['https:']) return;

  const http = require('http');
  const https = require('https');
  const net = require('net');
  const tls = require('tls');
  const noProxy = (env.no_proxy ?? env.NO_PROXY ?? '').split(/[\s,]+/).filter(Boolean);

  function proxyUrl(name) {
    const text = env[name] || env[name.toUpperCase()];
    try {
      return text ? new URL(text.includes('://') ? text : `http://${text}`) : null;
    } catch {
      return null; // not a URL: as without the variable
    }
  }

  function bare(host) {
    return host.startsWith('[') ? host.slice(1, -1) : host;
  }

  function bypassed(host, port, proxy) {
    host = bare(host).toLowerCase();
    // A request to the proxy itself (its CONNECT, say) goes to it directly.
    if (host === bare(proxy.hostname) && Number(port) === Number(proxy.port || 80)) return true;
    return noProxy.some((entry) => {
      if (entry === '*') return true;
      const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(entry.toLowerCase());
      if (!m || (m[2] && Number(m[2]) !== Number(port))) return false;
      const name = bare(m[1]).replace(/^\*?\./, '');
      return host === name || host.endsWith(`.${name}`);
    });
  }

  // A socket to host:port through the proxy's CONNECT tunnel: callback(error, socket).
  function tunnel(proxy, host, port, callback) {
    const target = `${net.isIPv6(bare(host)) ? `[${bare(host)}]` : host}:${port}`;
    const headers = { host: target };
    if (proxy.username) {
      const user = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
      headers['proxy-authorization'] = `Basic ${Buffer.from(user).toString('base64')}`;
    }
    const request = http.request({
      host: bare(proxy.hostname), port: proxy.port || 80, method: 'CONNECT', path: target,
      headers, agent: false,
    });
    request.once('connect', (response, socket, head) => {
      if (response.statusCode !== 200) {
        socket.destroy();
        callback(new Error(`proxy ${proxy.host} refused CONNECT ${target}: ${response.statusCode}`));
        return;
      }
      if (head.length) socket.unshift(head);
      callback(null, socket);
    });
    request.once('error', callback);
    request.end();
  }

  function secure(socket, options, host) {
    const servername = options.servername || (net.isIP(bare(host)) ? undefined : bare(host));
    return tls.connect({ ...options, socket, servername, host: bare(host) });
  }

  // undici's connector: callback(error, socket) once the connection (and TLS) is up.
  function connectForFetch(options, callback) {
    const secured = options.protocol === 'https:';
    const port = options.port || (secured ? 443 : 80);
    const proxy = proxies[options.protocol];
    const done = (socket) => {
      if (!secured) return callback(null, socket);
      const alpn = { ALPNProtocols: ['http/1.1'], servername: options.servername };
      const tlsSocket = secure(socket, alpn, options.hostname);
      tlsSocket.once('secureConnect', () => callback(null, tlsSocket));
      tlsSocket.once('error', callback);
    };
    if (!proxy || bypassed(options.hostname, port, proxy)) {
      const socket = net.connect({ host: bare(options.hostname), port });
      socket.once('connect', () => done(socket)).once('error', callback);
      return;
    }
    tunnel(proxy, options.hostname, port, (error, socket) => (error ? callback(error) : done(socket)));
  }

  function routeFetch() {
    const key = Symbol.for('undici.globalDispatcher.1');
    if (typeof fetch !== 'function') return;
    if (!globalThis[key]) fetch('').catch(() => {}); // loads Node's undici, which sets its Agent
    const Agent = globalThis[key] && globalThis[key].constructor;
    if (typeof Agent === 'function') globalThis[key] = new Agent({ connect: connectForFetch });
  }

  function tunnelling(Base, protocol) {
    return class extends Base {
      createConnection(options, callback) {
        const port = options.port || (protocol === 'https:' ? 443 : 80);
        const proxy = proxies[protocol];
        if (!proxy || bypassed(options.host, port, proxy)) {
          return super.createConnection(options, callback);
        }
        tunnel(proxy, options.host, port, (error, socket) => {
          if (error) return callback(error);
          callback(null, protocol === 'https:' ? secure(socket, options, options.host) : socket);
        });
        return undefined;
      }
    };
  }

  try {
    routeFetch();
  } catch {} // an unexpected undici: fetch goes direct, as without this file
  try {
    // The same options as Node's own global agents (keep-alive and its timeout).
    http.globalAgent = new (tunnelling(http.Agent, 'http:'))({ ...http.globalAgent.options });
    https.globalAgent = new (tunnelling(https.Agent, 'https:'))({ ...https.globalAgent.options });
  } catch {}
})();
