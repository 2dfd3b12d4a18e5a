import { json, requestAPI } from '../api';
import { __ } from '../i18n';
import { button, copyButton, ErrorLine, guarded, h, labelled, setEnabled, textField } from '../panel/dom';
import { nodeReason, readiness, validateRange } from '../state';
import { Tab, ViewContext, shownUrl } from './context';

/** What GET /nodes/{node}/examples answers. */
export interface Examples {
  input: unknown;
  checkpoint?: string;
  endpoint: string;
  docs?: string;
  openapi?: string;
  curl: string;
  grpcurl: string | null;
  oip_curl?: string | null;
  tritonclient?: string | null;
  python?: string | null;
}

/** A labelled block of text to paste, with its Copy button. */
export function snippet(label: string, text: string, className: string): HTMLElement {
  return h('div', { className: 'jp-deploy-snippet' },
    h('div', { className: 'jp-deploy-snippet-head' }, h('span', { className: 'jp-deploy-label' }, label),
      copyButton(() => text, label)),
    h('pre', { className: `jp-deploy-example ${className}` }, text));
}

/** A Python call of the endpoint with requests. */
export function pythonSnippet(endpoint: string, input: unknown): string {
  return [
    'import os, requests',
    `answer = requests.post(${JSON.stringify(endpoint)},`,
    `                       json={"input": ${JSON.stringify(input ?? {})}},`,
    '                       headers={"Authorization": f"Bearer {os.environ[\'NODE_KEY\']}"})',
    'print(answer.json()["output"])'
  ].join('\n');
}

/** Endpoint and API docs, calls to paste, the checkpoint, the range (editable), the aliases. */
export class OverviewTab extends Tab {
  private examples: Examples | null = null;
  private loaded = false;
  private error = new ErrorLine();
  private scaleError = new ErrorLine();
  private scale: HTMLElement | null = null; // kept across renders: what is typed stays

  constructor(context: ViewContext, name: string) {
    super(context, name, __('Overview'), 'overview');
  }

  render(): void {
    const node = this.info;
    if (!node) {
      this.node.replaceChildren(h('p', { className: 'jp-deploy-empty' }, __('Node %1 no longer exists.', this.name)));
      return;
    }
    if (!this.loaded) {
      this.loaded = true;
      void this.load();
    }
    const endpoint = shownUrl(this.context, node.endpoint);
    const aliases = this.context.model.aliases.filter(a => a.routing.some(r => r.node === node.name));
    const reason = nodeReason(node, this.context.model.eventsOf(node.name), __);
    this.node.replaceChildren(
      this.error.node,
      h('dl', { className: 'jp-deploy-facts' },
        h('dt', {}, __('Status')), h('dd', { className: 'jp-deploy-status-line' }, __(node.status),
          reason && h('span', { className: 'jp-deploy-reason' }, ` — ${reason}`)),
        h('dt', {}, __('Endpoint')), h('dd', {},
          h('a', { href: endpoint, target: '_blank', rel: 'noopener', className: 'jp-deploy-endpoint' }, endpoint),
          copyButton(() => endpoint, __('endpoint of %1', node.name))),
        h('dt', {}, __('API docs')), h('dd', {}, this.examples?.docs
          ? h('a', { href: shownUrl(this.context, this.examples.docs), target: '_blank', rel: 'noopener',
            className: 'jp-deploy-docs-link' }, __('Open API docs (Swagger)'))
          : h('span', { className: 'jp-deploy-muted' }, node.image ? __('an image node has no API document') : '…')),
        h('dt', {}, node.image ? __('Image') : __('Checkpoint')),
        h('dd', {}, node.image || this.checkpointLink(node.checkpoint_id ?? '', this.examples?.checkpoint || node.checkpoint)),
        h('dt', {}, __('Runtime')), h('dd', {}, node.runtime + (node.config ? ` · ${node.config}` : '')),
        h('dt', {}, __('Instances')), h('dd', {}, readiness(node, __)),
        h('dt', {}, __('Aliases')), h('dd', {}, aliases.length
          ? aliases.map(a => `${a.name} (${a.routing.find(r => r.node === node.name)?.weight ?? 0}%)`).join(', ')
          : __('none'))),
      (this.scale ??= this.scaleForm(node.min, node.max)),
      this.snippets());
  }

  /** The node's checkpoint version as a link to its view. */
  private checkpointLink(id: string, fallback: string): HTMLElement | string {
    const version = this.context.model.checkpoints.find(c => c.id === id);
    if (!version) {
      return fallback;
    }
    const ref = `${version.name}@${version.version}`;
    return h('button', {
      type: 'button', className: 'jp-deploy-link jp-deploy-checkpoint-link', title: __('Open checkpoint %1', ref),
      onclick: () => this.context.openCheckpoint(ref)
    }, ref);
  }

  private async load(): Promise<void> {
    if (this.info?.image) {
      return; // image nodes have no examples
    }
    if (await guarded(this.error, async () => {
      this.examples = await requestAPI<Examples>(`nodes/${this.name}/examples`);
    })) {
      this.render();
    }
  }

  /** Min and max, checked here before they are sent; the answer's error beside them. */
  private scaleForm(min: number, max: number): HTMLElement {
    const low = textField({ type: 'number', min: 0, value: min, name: 'min', id: `${this.id}-min` });
    const high = textField({ type: 'number', min: 1, value: max, name: 'max', id: `${this.id}-max` });
    const problems = h('div', { className: 'jp-deploy-validation', role: 'status' });
    const save = button(__('Scale'), () => void guarded(this.scaleError, async () => {
      await requestAPI(`nodes/${this.name}`, json('PATCH', { min: Number(low.value), max: Number(high.value) }));
      await this.context.model.refresh();
    }), 'jp-mod-accept jp-deploy-scale-save');
    save.setAttribute('aria-label', __('Scale %1', this.name));
    const check = () => {
      const errors = validateRange(low.value, high.value, __);
      problems.textContent = errors.join('; ');
      setEnabled(save, errors.length === 0);
    };
    low.addEventListener('input', check);
    high.addEventListener('input', check);
    return h('fieldset', { className: 'jp-deploy-form jp-deploy-scale' },
      h('legend', {}, __('Instance range')),
      ...labelled(__('Minimum'), low), ...labelled(__('Maximum'), high),
      save, problems, this.scaleError.node);
  }

  private snippets(): HTMLElement {
    const examples = this.examples;
    if (!examples) {
      return h('div');
    }
    const show = (text: string) => shownUrl(this.context, text);
    const parts = [
      snippet('curl', show(examples.curl), 'jp-deploy-curl'),
      snippet('Python', show(pythonSnippet(examples.endpoint, examples.input)), 'jp-deploy-python')
    ];
    if (examples.grpcurl) {
      parts.push(snippet('grpcurl', examples.grpcurl, 'jp-deploy-grpcurl'));
    }
    if (examples.oip_curl) {
      parts.push(snippet(__('Open Inference Protocol (curl)'), show(examples.oip_curl), 'jp-deploy-oip-curl'));
    }
    if (examples.tritonclient) {
      parts.push(snippet('tritonclient', show(examples.tritonclient), 'jp-deploy-tritonclient'));
    }
    return h('section', { className: 'jp-deploy-snippets' }, h('h3', {}, __('Call it')), ...parts);
  }
}
