const SVG = 'http://www.w3.org/2000/svg';

/** The SVG points of a series scaled into width x height (the last `width/4` values). */
export function points(values: number[], width: number, height: number): string {
  if (values.length === 0) {
    return '';
  }
  const top = Math.max(...values, 1e-9);
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  return values
    .map((v, i) => `${(i * step).toFixed(1)},${(height - (v / top) * (height - 2) - 1).toFixed(1)}`)
    .join(' ');
}

/** A small labelled line chart. */
export class Sparkline {
  readonly node: HTMLElement;
  private line: SVGPolylineElement;
  private value: HTMLElement;

  constructor(
    label: string,
    private unit: string
  ) {
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 120 24');
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('class', 'jp-deploy-sparkline-svg');
    this.line = document.createElementNS(SVG, 'polyline');
    svg.append(this.line);
    // plain DOM: this module stays free of JupyterLab imports, for its tests
    this.value = document.createElement('span');
    this.value.className = 'jp-deploy-sparkline-value';
    this.value.textContent = '–';
    const name = document.createElement('span');
    name.textContent = label;
    this.node = document.createElement('div');
    this.node.className = 'jp-deploy-sparkline';
    this.node.append(name, svg, this.value);
  }

  update(values: number[]): void {
    this.line.setAttribute('points', points(values, 120, 24));
    const last = values[values.length - 1];
    this.value.textContent = last === undefined ? '–' : `${last.toFixed(last < 10 ? 2 : 0)} ${this.unit}`;
  }
}

export interface Totals {
  time: number;
  requests: number;
  duration_sum: number;
}

/** Rates from successive counter totals: requests per second and mean latency (ms). */
export function rates(samples: Totals[]): { rate: number[]; latency: number[] } {
  const rate: number[] = [];
  const latency: number[] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1];
    const b = samples[i];
    const dt = Math.max(b.time - a.time, 1e-3);
    const dn = Math.max(b.requests - a.requests, 0);
    rate.push(dn / dt);
    latency.push(dn > 0 ? ((b.duration_sum - a.duration_sum) / dn) * 1000 : 0);
  }
  return { rate, latency };
}
