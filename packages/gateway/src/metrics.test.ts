import * as http from 'node:http';
import { describe, expect, it } from 'vitest';
import { StartError } from './Errors.js';
import * as Metrics from './metrics.js';

function get(url: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .request(url, { method, agent: false }, async (response) => {
        let body = '';
        for await (const chunk of response) body += chunk;
        resolve({ status: response.statusCode!, type: response.headers['content-type'] ?? '', body });
      })
      .on('error', reject)
      .end();
  });
}

describe('Metrics', () => {
  it('writes counters and cumulative histogram buckets in the Prometheus text format', async () => {
    const metrics = Metrics.create();
    metrics.completed({ service: 'api', outcome: 'paid' }, 200, 0.0005);
    metrics.completed({ service: 'api', outcome: 'paid' }, 200, 0.001);
    metrics.completed({ service: 'api', outcome: 'paid' }, 200, 0.2);
    metrics.completed({ service: 'api', outcome: 'paid' }, 200, 60);
    metrics.decided('api', { reason: 'challenge' });
    metrics.decided('api', { reason: 'challenge', error: { code: 'L402_BAD_PREIMAGE' } });
    metrics.decided('api', { reason: 'unauthorized' });
    metrics.accepted('api');
    metrics.upstreamError('api', 'ECONNREFUSED');
    metrics.completed(undefined, 403, 0.0001);
    metrics.probed('lnd', true, 0.004);
    const { contentType, body } = await metrics.scrape();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const lines = body.split('\n');
    for (const line of [
      '# TYPE l402_request_duration_seconds histogram',
      'l402_request_duration_seconds_bucket{le="0.0005",service="api",outcome="paid"} 1',
      'l402_request_duration_seconds_bucket{le="0.001",service="api",outcome="paid"} 2',
      'l402_request_duration_seconds_bucket{le="0.1",service="api",outcome="paid"} 2',
      'l402_request_duration_seconds_bucket{le="0.25",service="api",outcome="paid"} 3',
      'l402_request_duration_seconds_bucket{le="30",service="api",outcome="paid"} 3',
      'l402_request_duration_seconds_bucket{le="+Inf",service="api",outcome="paid"} 4',
      'l402_request_duration_seconds_sum{service="api",outcome="paid"} 60.2015',
      'l402_request_duration_seconds_count{service="api",outcome="paid"} 4',
      'l402_request_duration_seconds_count{service="",outcome="blocked"} 1',
      '# TYPE l402_challenges_total counter',
      'l402_challenges_total{service="api"} 2',
      'l402_tokens_accepted_total{service="api"} 1',
      'l402_rejections_total{service="api",reason="invalid-credential",code="L402_BAD_PREIMAGE"} 1',
      'l402_rejections_total{service="api",reason="unauthorized",code=""} 1',
      'l402_rejections_total{service="",reason="blocked",code=""} 1',
      'l402_upstream_errors_total{service="api",code="ECONNREFUSED"} 1',
      'l402_lightning_up{backend="lnd"} 1',
      'l402_lightning_probe_duration_seconds{backend="lnd"} 0.004',
    ])
      expect(lines, line).toContain(line);
    expect(lines.some((l) => l.startsWith('process_cpu_user_seconds_total '))).toBe(true);
    // Nothing recorded, nothing written: no series of a label set never seen.
    expect(body).not.toContain('service="other"');
    // The recorder that records nothing takes the same calls.
    Metrics.none.completed({ service: 'api', outcome: 'paid' }, 200, 1);
  });

  it('serves /metrics alone on a listener of its own, and says when the address is taken', async () => {
    const metrics = Metrics.create();
    metrics.accepted('api');
    const server = await Metrics.serve(metrics, { host: '127.0.0.1', port: 0 });
    try {
      const scraped = await get(`${server.url}/metrics`);
      expect(scraped.status).toBe(200);
      expect(scraped.type).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(scraped.body).toContain('l402_tokens_accepted_total{service="api"} 1');
      expect((await get(`${server.url}/metrics`, 'HEAD')).status).toBe(200);
      expect((await get(`${server.url}/metrics?x=1`)).status).toBe(200);
      expect((await get(`${server.url}/`)).status).toBe(404);
      expect((await get(`${server.url}/metrics/x`)).status).toBe(404);
      expect((await get(`${server.url}/metrics`, 'DELETE')).status).toBe(405);
      await expect(Metrics.serve(metrics, server.address)).rejects.toThrow(StartError);
      await expect(Metrics.serve(metrics, server.address)).rejects.toThrow(/prometheus\.listenaddr/);
    } finally {
      await server.close();
    }
  });
});
