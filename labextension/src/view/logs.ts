import { requestAPI, requestRaw } from '../api';
import { __ } from '../i18n';
import { button, ErrorLine, guarded, h } from '../panel/dom';
import { PollingTab, Tab, ViewContext } from './context';
import { Examples } from './overview';

const MAX_LINES = 5000;

/** The instances' logs, followed: per-instance filter, search, pause, wrap, download. */
export class LogsTab extends Tab {
  private lines: { instance: string; text: string }[] = [];
  private abort: AbortController | null = null;
  private paused = false;
  private error = new ErrorLine();
  private pre = h('pre', { className: 'jp-deploy-logs', tabindex: 0 });
  private instance = h('select', { className: 'jp-mod-styled', name: 'log-instance' });
  private search = h('input', { className: 'jp-mod-styled', type: 'search', name: 'log-search' });
  private pause = button(__('Pause'), () => this.togglePause(), 'jp-deploy-log-pause');
  private wrap = h('input', { type: 'checkbox', name: 'log-wrap' });

  constructor(context: ViewContext, name: string) {
    super(context, name, __('Logs'), 'logs');
    this.instance.id = `${this.id}-instance`;
    this.search.id = `${this.id}-search`;
    this.wrap.id = `${this.id}-wrap`;
    this.instance.addEventListener('change', () => this.restart());
    this.search.addEventListener('input', () => this.draw());
    this.wrap.addEventListener('change', () => this.pre.classList.toggle('jp-deploy-wrap', this.wrap.checked));
    this.node.append(
      h('div', { className: 'jp-deploy-row jp-deploy-log-tools' },
        h('label', { for: this.instance.id }, __('Instance')), this.instance,
        h('label', { for: this.search.id }, __('Search')), this.search, this.pause,
        h('label', { for: this.wrap.id }, this.wrap, __('Wrap lines')),
        button(__('Download'), () => this.download())),
      this.error.node, this.pre);
  }

  render(): void {
    const chosen = this.instance.value;
    const ids = (this.info?.instances ?? []).map(i => i.id);
    this.instance.replaceChildren(h('option', { value: '' }, __('all instances')),
      ...ids.map(id => h('option', { value: id, selected: id === chosen }, id)));
    if (!this.abort) {
      void this.follow();
    }
  }

  stop(): void {
    this.abort?.abort();
    this.abort = null;
  }

  private restart(): void {
    this.stop();
    this.lines = [];
    this.draw();
    void this.follow();
  }

  private togglePause(): void {
    this.paused = !this.paused;
    this.pause.textContent = this.paused ? __('Follow') : __('Pause');
    this.draw();
  }

  private draw(): void {
    if (this.paused) {
      return;
    }
    const needle = this.search.value.toLowerCase();
    const text = this.lines.filter(l => !needle || l.text.toLowerCase().includes(needle))
      .map(l => `[${l.instance}] ${l.text}`).join('\n');
    this.pre.textContent = text;
    this.pre.scrollTop = this.pre.scrollHeight;
  }

  private download(): void {
    const blob = new Blob([this.lines.map(l => `[${l.instance}] ${l.text}`).join('\n')], { type: 'text/plain' });
    const link = h('a', { href: URL.createObjectURL(blob), download: `${this.name}.log` });
    link.click();
    URL.revokeObjectURL(link.href);
  }

  /** The tail of each instance's log, then new lines as they come (NDJSON stream). */
  private async follow(): Promise<void> {
    const abort = (this.abort = new AbortController());
    const instance = this.instance.value ? `&instance=${encodeURIComponent(this.instance.value)}` : '';
    await guarded(this.error, async () => {
      try {
        const response = await requestRaw(`nodes/${this.name}/logs?tail=16384&follow=true${instance}`, { signal: abort.signal });
        const reader = response.body!.getReader();
        const decoder = new TextDecoder();
        let buffered = '';
        for (;;) {
          const { done, value } = await reader.read();
          if (done) {
            break;
          }
          buffered += decoder.decode(value, { stream: true });
          const parts = buffered.split('\n');
          buffered = parts.pop() ?? '';
          for (const part of parts.filter(Boolean)) {
            const item = JSON.parse(part);
            const text: string = item.log ?? item.line ?? '';
            this.lines.push(...text.replace(/\n$/, '').split('\n').map(t => ({ instance: item.instance ?? '', text: t })));
          }
          this.lines.splice(0, Math.max(this.lines.length - MAX_LINES, 0));
          this.draw();
        }
      } catch (e) {
        if ((e as Error).name !== 'AbortError') {
          throw e;
        }
      }
    });
  }
}

/** A test request: the pin-time example as a JSON editor, Execute, the answer. */
export class TryTab extends Tab {
  private error = new ErrorLine();
  private editor = h('textarea', { className: 'jp-deploy-input jp-mod-styled', rows: 6, spellcheck: 'false' });
  private output = h('pre', { className: 'jp-deploy-response', 'aria-live': 'polite' });
  private loaded = false;

  constructor(context: ViewContext, name: string) {
    super(context, name, __('Try it'), 'try');
    this.editor.id = `${this.id}-input`;
    const run = button(__('Execute'), () => void this.execute(), 'jp-mod-accept jp-deploy-execute');
    run.setAttribute('aria-label', __('Execute %1', name));
    this.node.append(this.error.node, h('label', { for: this.editor.id }, __('Input')), this.editor, run,
      h('div', { className: 'jp-deploy-label' }, __('Response')), this.output);
  }

  render(): void {
    if (!this.loaded) {
      this.loaded = true;
      void guarded(this.error, async () => {
        this.editor.value = JSON.stringify({ input: {} }, null, 2);
        const examples = await requestAPI<Examples>(`nodes/${this.name}/examples`);
        this.editor.value = JSON.stringify({ input: examples.input ?? {} }, null, 2);
      });
    }
  }

  private async execute(): Promise<void> {
    this.output.textContent = '…';
    try {
      JSON.parse(this.editor.value);
    } catch (e) {
      this.output.textContent = '';
      this.error.show(__('the input is not valid JSON: %1', (e as Error).message));
      return;
    }
    const ok = await guarded(this.error, async () => {
      const answer = await requestAPI<unknown>(`nodes/${this.name}:execute`, { method: 'POST', body: this.editor.value });
      this.output.textContent = JSON.stringify(answer, null, 2);
    });
    if (!ok) {
      this.output.textContent = '';
    }
  }
}

interface Served {
  time: number;
  request_id: string;
  instance: string;
  status: number;
  latency_ms: number;
}

/** The requests the node served, newest first, from its capture (when capture is on). */
export class RequestsTab extends PollingTab {
  private error = new ErrorLine();

  constructor(context: ViewContext, name: string) {
    super(context, name, __('Requests'), 'requests');
  }

  protected async load(): Promise<void> {
    await guarded(this.error, async () => {
      const answer = await requestAPI<{ capture: unknown; requests: Served[] }>(`nodes/${this.name}/requests?last=200`);
      const rows = answer.requests.slice().reverse().map(r => h('tr', { 'data-status': r.status },
        ...[new Date(r.time * 1000).toLocaleTimeString(), String(r.status), `${r.latency_ms.toFixed(1)} ms`,
          r.instance ?? '', r.request_id].map(v => h('td', {}, v))));
      this.node.replaceChildren(this.error.node,
        answer.capture ? '' : h('p', { className: 'jp-deploy-muted' },
          __('Capture is off for this node: turn it on in its settings (capture) to list the requests it serves.')),
        h('table', { className: 'jp-deploy-table jp-deploy-request-table' },
          h('thead', {}, h('tr', {}, ...[__('Time'), __('Status'), __('Latency'), __('Instance'), __('Request id')]
            .map(t => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, ...rows)));
    });
  }
}
