/** One sample of a node's history, as GET /deploy/api/nodes/{node}/history answers it. */
export interface HistorySample {
  time: number;
  requests: number;
  ok: number;
  client_errors: number;
  server_errors: number;
  duration_sum: number;
  duration_count: number;
  buckets: number[];
  in_flight: number;
  capacity: number;
  instances: number;
  /** Each instance's CPU and memory as the service last read them; null: no reading since. */
  usage?: Record<string, InstanceUsage> | null;
}

/** One instance's reading: CPU in percent of one core, resident memory in bytes. */
export interface InstanceUsage {
  cpu_percent: number;
  memory_bytes: number;
}

/** Per instance (by id, in the order they first appear), one value per time of the series. */
export interface UsageSeries {
  instances: string[];
  cpu: (number | null)[][];
  /** Resident memory in MB (10^6 bytes). */
  memory: (number | null)[][];
}

export interface History {
  node: string;
  period_s: number;
  range_s: number;
  time: number;
  /** The upper bounds of the latency buckets in seconds; null for +Inf. */
  buckets: (number | null)[];
  samples: HistorySample[];
}

/** What the charts draw, one value per interval between two samples (time: its end). */
export interface Series {
  time: number[];
  ok: number[];
  clientErrors: number[];
  serverErrors: number[];
  /** Answers that were not 2xx/3xx, in percent of all answers; null when there were none. */
  errorPercent: (number | null)[];
  p50: (number | null)[];
  p95: (number | null)[];
  p99: (number | null)[];
  inFlight: number[];
  capacity: number[];
  usage: UsageSeries;
}

/** A counter's growth; a drop means the gateway restarted: count from zero. */
function grown(now: number, before: number): number {
  return now >= before ? now - before : now;
}

/**
 * The latency under which a share `q` of the requests fell, in ms, from the growth of each
 * cumulative bucket (linear within a bucket, as Prometheus's histogram_quantile).
 */
export function quantile(q: number, bounds: (number | null)[], counts: number[]): number | null {
  const total = counts[counts.length - 1] ?? 0;
  if (total <= 0) {
    return null;
  }
  const rank = q * total;
  for (let i = 0; i < counts.length; i++) {
    if (counts[i] >= rank) {
      const upper = bounds[i];
      const lower = i > 0 ? (bounds[i - 1] ?? 0) : 0;
      if (upper === null) {
        return lower * 1000; // past the last finite bound: all that can be said
      }
      const below = i > 0 ? counts[i - 1] : 0;
      const inside = counts[i] - below;
      const share = inside > 0 ? (rank - below) / inside : 1;
      return (lower + (upper - lower) * share) * 1000;
    }
  }
  return null;
}

/** Rates per second, error share and latency percentiles between successive samples. */
export function toSeries(history: Pick<History, 'buckets' | 'samples'>): Series {
  const series: Series = {
    time: [], ok: [], clientErrors: [], serverErrors: [], errorPercent: [], p50: [], p95: [], p99: [],
    inFlight: [], capacity: [], usage: { instances: [], cpu: [], memory: [] }
  };
  const samples = history.samples;
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1];
    const b = samples[i];
    const dt = Math.max(b.time - a.time, 1e-3);
    const ok = grown(b.ok, a.ok);
    const client = grown(b.client_errors, a.client_errors);
    const server = grown(b.server_errors, a.server_errors);
    const answered = ok + client + server;
    const counts = b.buckets.map((count, j) => grown(count, a.buckets[j] ?? 0));
    series.time.push(b.time);
    series.ok.push(ok / dt);
    series.clientErrors.push(client / dt);
    series.serverErrors.push(server / dt);
    series.errorPercent.push(answered > 0 ? (100 * (client + server)) / answered : null);
    series.p50.push(quantile(0.5, history.buckets, counts));
    series.p95.push(quantile(0.95, history.buckets, counts));
    series.p99.push(quantile(0.99, history.buckets, counts));
    series.inFlight.push(b.in_flight);
    series.capacity.push(b.capacity);
  }
  series.usage = usageSeries(samples.slice(1));
  return series;
}

/**
 * One line per instance of its CPU % and memory (MB), a value per sample; null where a sample
 * has no reading of it (before it started, after it was replaced, or no round came in time).
 */
export function usageSeries(samples: Pick<HistorySample, 'usage'>[]): UsageSeries {
  const instances: string[] = [];
  for (const sample of samples) {
    for (const id of Object.keys(sample.usage ?? {})) {
      if (!instances.includes(id)) {
        instances.push(id);
      }
    }
  }
  const column = (pick: (u: InstanceUsage) => number) => instances.map(id => samples.map(s => {
    const reading = s.usage?.[id];
    return reading ? pick(reading) : null;
  }));
  return {
    instances,
    cpu: column(u => u.cpu_percent),
    memory: column(u => u.memory_bytes / 1e6)
  };
}

/** The ranges the Monitoring tab offers, in seconds. */
export const RANGES: { label: string; seconds: number }[] = [
  { label: '5 min', seconds: 300 },
  { label: '1 h', seconds: 3600 },
  { label: '24 h', seconds: 86400 }
];
