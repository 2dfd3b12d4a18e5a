import { requestAPI, requestRaw } from '../api';
import { button, ErrorLine, h } from './dom';
import { rates, Sparkline, Totals } from './sparkline';

interface Examples {
  input: unknown;
  endpoint: string;
  curl: string;
  grpcurl: string | null;
  oip_curl?: string | null;
  tritonclient?: string | null;
}

type Tab = 'logs' | 'metrics' | 'test';

/** A node's tabs: its logs (followed), its sparklines and its test request. */
export class NodeDetail {
  readonly node: HTMLElement;
  private body = h('div', { className: 'jp-deploy-detail-body' });
  private abort: AbortController | null = null;
  private timer = 0;

  constructor(
    private name: string,
    private refreshSeconds: () => number,
    private gateway: () => { actual: string; shown: string }
  ) {
    const tabs = (['logs', 'metrics', 'test'] as Tab[]).map(tab =>
      button({ logs: 'Logs', metrics: 'Metrics', test: 'Test request' }[tab], () => this.open(tab),
        `jp-deploy-tab jp-deploy-tab-${tab}`)
    );
    this.node = h('div', { className: 'jp-deploy-detail' }, h('div', { className: 'jp-deploy-tabs' }, ...tabs), this.body);
    this.open('test');
  }

  dispose(): void {
    this.stop();
  }

  private stop(): void {
    this.abort?.abort();
    this.abort = null;
    window.clearInterval(this.timer);
  }

  private open(tab: Tab): void {
    this.stop();
    this.node.querySelectorAll('.jp-deploy-tab').forEach(b =>
      b.classList.toggle('jp-mod-active', b.classList.contains(`jp-deploy-tab-${tab}`)));
    this.body.replaceChildren();
    if (tab === 'logs') {
      void this.logs();
    } else if (tab === 'metrics') {
      this.metrics();
    } else {
      void this.test();
    }
  }

  /** The tail of each instance's log, then new lines as they come (NDJSON stream). */
  private async logs(): Promise<void> {
    const pre = h('pre', { className: 'jp-deploy-logs' });
    const error = new ErrorLine();
    this.body.append(error.node, pre);
    this.abort = new AbortController();
    try {
      const response = await requestRaw(
        `nodes/${this.name}/logs?tail=8192&follow=true`, { signal: this.abort.signal });
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      let buffered = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          break;
        }
        buffered += decoder.decode(value, { stream: true });
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines.filter(Boolean)) {
          const item = JSON.parse(line);
          const text: string = item.log ?? item.line ?? '';
          pre.append(`[${item.instance ?? ''}] ${text}${text.endsWith('\n') ? '' : '\n'}`);
        }
        pre.scrollTop = pre.scrollHeight;
      }
    } catch (e) {
      if ((e as Error).name !== 'AbortError') {
        error.show(e);
      }
    }
  }

  /** Request rate and mean latency from the gateway's counters, sampled every few seconds. */
  private metrics(): void {
    const rate = new Sparkline('Requests', 'req/s');
    const latency = new Sparkline('Latency', 'ms');
    const error = new ErrorLine();
    this.body.append(error.node, rate.node, latency.node);
    const samples: Totals[] = [];
    const sample = async () => {
      try {
        samples.push(await requestAPI<Totals>(`nodes/${this.name}/stats`));
        samples.splice(0, Math.max(samples.length - 31, 0));
        const series = rates(samples);
        rate.update(series.rate);
        latency.update(series.latency);
        error.clear();
      } catch (e) {
        error.show(e);
      }
    };
    void sample();
    this.timer = window.setInterval(sample, Math.max(this.refreshSeconds(), 1) * 1000);
  }

  /** The pin-time example as a JSON editor, Execute, the answer, and calls to paste. */
  private async test(): Promise<void> {
    const error = new ErrorLine();
    const editor = h('textarea', { className: 'jp-deploy-input jp-mod-styled', rows: 5, spellcheck: 'false' });
    const output = h('pre', { className: 'jp-deploy-response' });
    const run = button('Execute', () => void this.execute(editor.value, output, error), 'jp-mod-accept jp-deploy-execute');
    this.body.append(error.node, h('label', {}, 'Input'), editor, run, h('label', {}, 'Response'), output);
    try {
      const examples = await requestAPI<Examples>(`nodes/${this.name}/examples`);
      editor.value = JSON.stringify({ input: examples.input ?? {} }, null, 2);
      const { actual, shown } = this.gateway();
      const show = (text: string) => (actual && shown ? text.split(actual).join(shown) : text);
      this.body.append(
        h('label', {}, 'curl'), h('pre', { className: 'jp-deploy-example jp-deploy-curl' }, show(examples.curl)),
        h('label', {}, 'grpcurl'),
        h('pre', { className: 'jp-deploy-example jp-deploy-grpcurl' }, examples.grpcurl || 'no gRPC example for this node'),
        h('label', {}, 'Open Inference Protocol (curl)'),
        h('pre', { className: 'jp-deploy-example jp-deploy-oip-curl' }, show(examples.oip_curl || 'no OIP example for this node')),
        h('label', {}, 'tritonclient'),
        h('pre', { className: 'jp-deploy-example jp-deploy-tritonclient' }, show(examples.tritonclient || 'no OIP example for this node'))
      );
    } catch (e) {
      editor.value = JSON.stringify({ input: {} }, null, 2);
      error.show(e);
    }
  }

  private async execute(text: string, output: HTMLElement, error: ErrorLine): Promise<void> {
    error.clear();
    output.textContent = '…';
    try {
      JSON.parse(text);
    } catch (e) {
      output.textContent = '';
      error.show(`the input is not valid JSON: ${(e as Error).message}`);
      return;
    }
    try {
      const answer = await requestAPI<unknown>(`nodes/${this.name}:execute`, { method: 'POST', body: text });
      output.textContent = JSON.stringify(answer, null, 2);
    } catch (e) {
      output.textContent = '';
      error.show(e);
    }
  }
}
