import { isIP } from 'node:net';

/**
 * Which proxy a request goes through, as Go's http.ProxyFromEnvironment decides it: Go stretcher used the
 * default HTTP client, so HTTPS_PROXY / HTTP_PROXY / NO_PROXY (either case) worked, and servers behind a
 * proxy depend on it. Loopback hosts are never proxied; NO_PROXY takes hosts, domains (".example.com" or
 * "example.com", subdomains included), IPs, optional ports, or "*".
 */
export function proxyFor(url: URL, env: NodeJS.ProcessEnv): string | undefined {
  const https = url.protocol === 'https:' || url.protocol === 's3:';
  const raw = https ? (env.HTTPS_PROXY ?? env.https_proxy) : (env.HTTP_PROXY ?? env.http_proxy);
  if (!raw) return undefined;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || isLoopback(host)) return undefined;
  const port = url.port || (https ? '443' : '80');
  const noProxy = (env.NO_PROXY ?? env.no_proxy ?? '').split(/[\s,]+/).filter(Boolean);
  for (const entry of noProxy) {
    if (entry === '*') return undefined;
    const m = /^(.*?)(?::(\d+))?$/.exec(entry.toLowerCase().replace(/^\[|\]$/g, '')) as RegExpExecArray;
    const [, pattern = '', entryPort] = m;
    if (entryPort && entryPort !== port) continue;
    const domain = pattern.replace(/^\*?\./, '');
    if (host === domain || (!isIP(host) && host.endsWith(`.${domain}`))) return undefined;
  }
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
}

function isLoopback(host: string): boolean {
  return host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
