import { DeployEvent } from '../src/follow';
import { quantile, toSeries, usageSeries } from '../src/history';
import { balance, promote, validateWeights } from '../src/weights';
import {
  aliasWarnings, instanceRecords, latestFailure, nodeReason, readiness, restartCount, validateRange
} from '../src/state';

let seq = 0;
const ev = (instance: string | null, status: string | null, message: string, time = seq): DeployEvent =>
  ({ seq: ++seq, time, node: 'n', instance, status, message });

/** An instance's life: created, started, then (maybe) an exit and its removal. */
function life(id: string, exit?: string): DeployEvent[] {
  const events = [ev(id, 'Undefined', ''), ev(id, 'Created', 'pid 41'), ev(id, 'Started', '127.0.0.1:5000'),
    ev(id, 'Preparing', 'restoring the checkpoint')];
  if (exit) {
    events.push(ev(id, 'Deleting', exit), ev(id, null, 'removed'));
  } else {
    events.push(ev(id, 'Healthy', 'ready'));
  }
  return events;
}

describe('reasons', () => {
  const crashLoop = [ev(null, 'Created', 'node'), ...life('a', 'the instance exited (code 3)'),
    ev(null, 'Unhealthy', 'node'), ...life('b', 'the instance exited (code 3)'), ...life('c', 'the instance exited (code 3)')];

  it('gives a crash-looping node its exit and its restart count', () => {
    expect(restartCount(crashLoop)).toBe(3);
    expect(latestFailure(crashLoop)).toBe('the instance exited (code 3)');
    expect(nodeReason({ status: 'Unhealthy' }, crashLoop)).toBe('the instance exited (code 3) · 3 restarts');
  });

  it('keeps a replaced instance with its pid, port and exit, and the replacement healthy', () => {
    const killed = [...life('a'), ev('a', 'Unhealthy', 'the instance exited (code -9)'),
      ev('a', 'Deleting', 'the instance exited (code -9)'), ev('a', null, 'removed'), ...life('b')];
    const [gone, replacement] = instanceRecords(killed);
    expect(gone).toMatchObject({ id: 'a', pid: 41, port: 5000, removed: true, replaced: true,
      reason: 'the instance exited (code -9)' });
    expect(replacement).toMatchObject({ id: 'b', status: 'Healthy', removed: false, reason: 'ready' });
    expect(nodeReason({ status: 'Healthy' }, killed)).toBe('1 restart');
  });

  it('does not count a scale-down or a delete as a restart', () => {
    const scaled = [...life('a'), ev('a', 'Deleting', 'scale down: draining'), ev('a', null, 'removed')];
    expect(restartCount(scaled)).toBe(0);
    expect(nodeReason({ status: 'Healthy' }, scaled)).toBe('');
  });

  it('counts ready instances against the range', () => {
    expect(readiness({ min: 2, max: 3, instances: [{ status: 'Healthy' }, { status: 'Preparing' }] }))
      .toBe('1/2 ready (max 3)');
  });
});

describe('scale and alias checks', () => {
  it('refuses a minimum above the maximum, and non-whole numbers', () => {
    expect(validateRange(5, 2)).toEqual(['the minimum (5) is more than the maximum (2)']);
    expect(validateRange('1', '3')).toEqual([]);
    expect(validateRange('', 0)).toHaveLength(2);
    expect(validateRange(1.5, 2)).toEqual(['the minimum must be a whole number, 0 or more']);
  });

  it('warns about a target with traffic that is not serving', () => {
    expect(aliasWarnings([{ node: 'a', weight: 80, status: 'Healthy' }, { node: 'b', weight: 20, status: 'Unhealthy' },
      { node: 'c', weight: 0, status: 'Unhealthy' }]))
      .toEqual(['b gets 20% of the traffic but is Unhealthy']);
  });
});

describe('history', () => {
  const bounds = [0.01, 0.1, 1, null];
  const sample = (time: number, ok: number, client: number, server: number, buckets: number[]) => ({
    time, requests: ok + client + server, ok, client_errors: client, server_errors: server,
    duration_sum: 0, duration_count: buckets[buckets.length - 1], buckets, in_flight: 1, capacity: 4, instances: 1
  });

  it('differences counters into rates per second and an error share', () => {
    const series = toSeries({ buckets: bounds, samples: [
      sample(0, 0, 0, 0, [0, 0, 0, 0]), sample(5, 50, 10, 0, [30, 60, 60, 60]), sample(10, 50, 10, 0, [30, 60, 60, 60])
    ] });
    expect(series.time).toEqual([5, 10]);
    expect(series.ok).toEqual([10, 0]);
    expect(series.clientErrors).toEqual([2, 0]);
    expect(series.errorPercent[0]).toBeCloseTo(100 / 6);
    expect(series.errorPercent[1]).toBeNull(); // no answers: no error share, not 0 %
    expect(series.p50[0]).toBeCloseTo(10); // the 30th of 60 is at the top of the first bucket
    expect(series.p99[0]).toBeCloseTo(10 + 90 * (59.4 - 30) / 30);
    expect(series.capacity).toEqual([4, 4]);
  });

  it('starts from zero when the gateway restarted', () => {
    const series = toSeries({ buckets: bounds, samples: [sample(0, 100, 0, 0, [100, 100, 100, 100]),
      sample(10, 20, 0, 0, [20, 20, 20, 20])] });
    expect(series.ok).toEqual([2]);
  });

  it('draws one CPU and one memory line per instance, with gaps where it has no reading', () => {
    const reading = (cpu: number, bytes: number) => ({ cpu_percent: cpu, memory_bytes: bytes });
    const series = toSeries({ buckets: bounds, samples: [
      { ...sample(0, 0, 0, 0, [0, 0, 0, 0]), usage: { 'n-1': reading(5, 1e6) } },
      { ...sample(5, 0, 0, 0, [0, 0, 0, 0]), usage: { 'n-1': reading(95.5, 2e6) } },
      { ...sample(10, 0, 0, 0, [0, 0, 0, 0]), usage: null },
      { ...sample(15, 0, 0, 0, [0, 0, 0, 0]), usage: { 'n-2': reading(1, 50e6), 'n-1': reading(40, 3e6) } }
    ] });
    expect(series.time).toEqual([5, 10, 15]);
    expect(series.usage.instances).toEqual(['n-1', 'n-2']);
    expect(series.usage.cpu).toEqual([[95.5, null, 40], [null, null, 1]]);
    expect(series.usage.memory).toEqual([[2, null, 3], [null, null, 50]]);
  });

  it('has no usage lines when no sample read an instance (a Swarm one, or an old service)', () => {
    expect(usageSeries([{ usage: null }, {}, { usage: {} }])).toEqual({ instances: [], cpu: [], memory: [] });
  });

  it('has no percentile without requests, and the last finite bound past it', () => {
    expect(quantile(0.5, bounds, [0, 0, 0, 0])).toBeNull();
    expect(quantile(0.99, bounds, [0, 0, 0, 10])).toBe(1000);
  });
});

describe('weight editor', () => {
  it('balances to 100 in whole numbers and promotes one node', () => {
    const balanced = balance([{ node: 'a', weight: 1 }, { node: 'b', weight: 1 }, { node: 'c', weight: 1 }]);
    expect(balanced.map(r => r.weight)).toEqual([34, 33, 33]);
    expect(validateWeights(balanced)).toEqual([]);
    expect(balance([{ node: 'a', weight: 70 }, { node: 'b', weight: 70 }]).map(r => r.weight)).toEqual([50, 50]);
    expect(balance([{ node: 'a', weight: 0 }, { node: 'b', weight: 0 }]).map(r => r.weight)).toEqual([50, 50]);
    expect(promote([{ node: 'a', weight: 70 }, { node: 'b', weight: 30 }], 'b')).toEqual([
      { node: 'a', weight: 0 }, { node: 'b', weight: 100 }]);
  });
});
