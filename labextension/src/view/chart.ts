import uPlot from 'uplot';

import { __ } from '../i18n';
import { h } from '../panel/dom';

/** One line of a chart: its label, its theme colour variable, and its values. */
export interface Line {
  label: string;
  color: string;
  values: (number | null)[];
  dash?: boolean;
  /** Join the points across a missing value (a reading that came late), not break the line. */
  joinGaps?: boolean;
}

function themeColor(variable: string): string {
  return getComputedStyle(document.body).getPropertyValue(variable).trim() || '#888';
}

/**
 * A time-series chart (uPlot) with axes, a legend that follows the cursor, and a line of text
 * that says what it shows now: the canvas cannot be read by a screen reader or a test.
 */
export class Chart {
  readonly node: HTMLElement;
  private plot: uPlot | null = null;
  private plotNode = h('div', { className: 'jp-deploy-chart-plot' });
  private summary = h('div', { className: 'jp-deploy-chart-summary', 'aria-live': 'off' });
  private colors = '';
  private resize = new ResizeObserver(() => this.fit());
  private last: { time: number[]; lines: Line[] } = { time: [], lines: [] };

  constructor(
    readonly title: string,
    private unit: string,
    private options: { min?: number; max?: number } = {}
  ) {
    this.node = h('figure', { className: 'jp-deploy-chart', role: 'img', 'aria-label': title },
      h('figcaption', { className: 'jp-deploy-chart-title' }, unit ? `${title} (${unit})` : title),
      this.plotNode, this.summary);
    this.resize.observe(this.plotNode);
  }

  dispose(): void {
    this.resize.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }

  /** Draw these lines over these times (seconds); rebuilt when the theme's colours change. */
  update(time: number[], lines: Line[]): void {
    this.last = { time, lines };
    // labels too: a replaced instance's line takes the same place under another name
    const colors = lines.map(l => `${l.label}=${themeColor(l.color)}`).join() + themeColor('--jp-ui-font-color2');
    if (!this.plot || colors !== this.colors || this.plot.series.length !== lines.length + 1) {
      this.colors = colors;
      this.build(lines);
    }
    this.plot!.setData([time, ...lines.map(l => l.values)] as uPlot.AlignedData);
    this.describe(lines);
  }

  private build(lines: Line[]): void {
    this.plot?.destroy();
    const axis = themeColor('--jp-ui-font-color2');
    const grid = themeColor('--jp-border-color2');
    const width = Math.max(this.plotNode.clientWidth, 200);
    this.plot = new uPlot({
      width, height: 160,
      scales: { x: { time: true }, y: { range: (_u, low, high) => [this.options.min ?? 0, Math.max(high, this.options.max ?? 0, 1e-9) * 1.1] } },
      axes: [
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 50,
          values: (_u, ticks) => ticks.map(formatValue) } // the unit is in the title
      ],
      series: [{}, ...lines.map(l => ({
        label: l.label, stroke: themeColor(l.color), width: 1.5, dash: l.dash ? [4, 3] : undefined,
        spanGaps: l.joinGaps ?? false, value: (_u: uPlot, v: number | null) => (v === null ? '–' : `${formatValue(v)} ${this.unit}`)
      }))],
      legend: { live: true }
    }, [this.last.time, ...lines.map(l => l.values)] as uPlot.AlignedData, this.plotNode);
  }

  private fit(): void {
    if (this.plot && this.plotNode.clientWidth > 0 && this.plotNode.clientWidth !== this.plot.width) {
      this.plot.setSize({ width: this.plotNode.clientWidth, height: 160 });
    }
  }

  /** The latest and the highest value of each line, in words; the y-axis top as data. */
  private describe(lines: Line[]): void {
    const parts = lines.map(l => {
      const values = l.values.filter((v): v is number => v !== null);
      const now = values.length ? values[values.length - 1] : null;
      const peak = values.length ? Math.max(...values) : null;
      return now === null ? __('%1: no data', l.label)
        : __('%1: %2 now, %3 at most', l.label, `${formatValue(now)} ${this.unit}`, `${formatValue(peak!)} ${this.unit}`);
    });
    this.summary.textContent = parts.length ? parts.join(' · ') : __('no data');
    const top = this.plot?.scales.y.max;
    this.node.dataset.yMax = top === undefined || top === null ? '' : String(top);
    this.node.setAttribute('aria-label', `${this.title}: ${this.summary.textContent}`);
  }
}

/** A number as a chart shows it: 3 significant digits at most. */
export function formatValue(v: number): string {
  if (v === 0) {
    return '0';
  }
  const abs = Math.abs(v);
  return abs >= 100 ? v.toFixed(0) : abs >= 10 ? v.toFixed(1) : abs >= 1 ? v.toFixed(2) : v.toPrecision(2);
}
