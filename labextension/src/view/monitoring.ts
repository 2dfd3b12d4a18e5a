import { requestAPI } from '../api';
import { History, RANGES, toSeries } from '../history';
import { __ } from '../i18n';
import { ErrorLine, guarded, h } from '../panel/dom';
import { Chart, Line } from './chart';
import { PollingTab, ViewContext } from './context';

/** A line colour per instance, in turn: theme variables only. */
const INSTANCE_COLORS = ['--jp-brand-color1', '--jp-warn-color1', '--jp-success-color1', '--jp-info-color1',
  '--jp-error-color1', '--jp-brand-color3', '--jp-warn-color3', '--jp-success-color3'];

/** One line per instance, named by its id. */
function perInstance(ids: string[], values: (number | null)[][]): Line[] {
  return ids.map((id, i) => ({
    label: id, color: INSTANCE_COLORS[i % INSTANCE_COLORS.length], values: values[i], joinGaps: true
  }));
}

/**
 * Charts of the node's history as the service keeps it: rates by class, errors, latency, load,
 * and each instance's CPU and memory.
 */
export class MonitoringTab extends PollingTab {
  private range = RANGES[0].seconds;
  private error = new ErrorLine();
  private picker: HTMLElement;
  private charts = {
    requests: new Chart(__('Requests'), __('req/s')),
    errors: new Chart(__('Errors (4xx and 5xx, refused included)'), '%', { max: 1 }),
    latency: new Chart(__('Latency'), 'ms'),
    load: new Chart(__('In flight against capacity'), ''),
    cpu: new Chart(__('CPU per instance'), __('% of a core')),
    memory: new Chart(__('Memory per instance'), 'MB')
  };

  constructor(context: ViewContext, name: string) {
    super(context, name, __('Monitoring'), 'monitoring');
    this.picker = h('div', { className: 'jp-deploy-range', role: 'radiogroup', 'aria-label': __('Time range') },
      ...RANGES.map(r => {
        const option = h('button', {
          className: 'jp-mod-styled jp-deploy-button jp-deploy-range-option', role: 'radio', type: 'button',
          'aria-checked': String(r.seconds === this.range), 'data-range': r.seconds,
          onclick: () => this.pick(r.seconds)
        }, __(r.label));
        return option;
      }));
    this.node.append(this.picker, this.error.node,
      h('div', { className: 'jp-deploy-charts' }, ...Object.values(this.charts).map(c => c.node)));
  }

  dispose(): void {
    Object.values(this.charts).forEach(c => c.dispose());
    super.dispose();
  }

  private pick(seconds: number): void {
    this.range = seconds;
    this.picker.querySelectorAll('button').forEach(b =>
      b.setAttribute('aria-checked', String(Number(b.dataset.range) === seconds)));
    void this.load();
  }

  protected async load(): Promise<void> {
    let history: History | null = null;
    await guarded(this.error, async () => {
      history = await requestAPI<History>(`nodes/${this.name}/history?range=${this.range}`);
    });
    if (history) {
      this.draw(history);
    }
  }

  private draw(history: History): void {
    const s = toSeries(history);
    this.node.dataset.samples = String(history.samples.length);
    this.charts.requests.update(s.time, [
      { label: '2xx', color: '--jp-success-color1', values: s.ok },
      { label: '4xx', color: '--jp-warn-color1', values: s.clientErrors },
      { label: '5xx', color: '--jp-error-color1', values: s.serverErrors }
    ]);
    this.charts.errors.update(s.time, [{ label: __('errors'), color: '--jp-error-color1', values: s.errorPercent }]);
    this.charts.latency.update(s.time, [
      { label: 'p50', color: '--jp-brand-color1', values: s.p50 },
      { label: 'p95', color: '--jp-warn-color1', values: s.p95 },
      { label: 'p99', color: '--jp-error-color1', values: s.p99 }
    ]);
    this.charts.load.update(s.time, [
      { label: __('in flight'), color: '--jp-brand-color1', values: s.inFlight },
      { label: __('capacity'), color: '--jp-ui-font-color2', values: s.capacity, dash: true }
    ]);
    this.charts.cpu.update(s.time, perInstance(s.usage.instances, s.usage.cpu));
    this.charts.memory.update(s.time, perInstance(s.usage.instances, s.usage.memory));
  }
}
