import { Dialog, showDialog } from '@jupyterlab/apputils';
import { NotebookPanel } from '@jupyterlab/notebook';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import { APIError, requestAPI } from './api';
import { DeployEvent, describeNode, FollowAPI, followNode } from './follow';
import { DeployRequest, magics, splitPin, toName } from './magic';
import { h } from './panel/dom';
import { NodeInfo } from './panel/model';

interface Guess {
  inputs: string[];
  outputs: string[];
  error?: string;
}

/** Run code in the kernel; its stdout and stderr go to `out`; an error throws. */
async function run(kernel: Kernel.IKernelConnection, code: string, out: (text: string) => void): Promise<void> {
  const future = kernel.requestExecute({ code, store_history: false, stop_on_error: true });
  let failure = '';
  future.onIOPub = msg => {
    if (KernelMessage.isStreamMsg(msg)) {
      out(msg.content.text);
    } else if (KernelMessage.isErrorMsg(msg)) {
      failure = `${msg.content.ename}: ${msg.content.evalue}`;
    } else if (KernelMessage.isExecuteResultMsg(msg) || KernelMessage.isDisplayDataMsg(msg)) {
      const text = msg.content.data['text/plain'];
      if (text) {
        out(`${text}\n`);
      }
    }
  };
  const reply = await future.done;
  if (reply.content.status !== 'ok' || failure) {
    throw new Error(failure || `the kernel answered ${reply.content.status}`);
  }
}

/** The inputs and outputs the kernel sees in a cell (jupyter_deploy.guess). */
async function guess(kernel: Kernel.IKernelConnection, body: string): Promise<Guess> {
  let text = '';
  const code =
    "print(__import__('json').dumps(__import__('jupyter_deploy.guess', fromlist=['guess'])" +
    `.guess(${JSON.stringify(body)}, globals())))`;
  await run(kernel, code, t => (text += t));
  return JSON.parse(text) as Guess;
}

class DeployForm extends Widget {
  constructor(private fields: Record<keyof DeployRequest, HTMLInputElement | HTMLSelectElement>, note: string) {
    super();
    this.addClass('jp-deploy-form');
    this.addClass('jp-deploy-cell-form');
    const label = (text: string, key: keyof DeployRequest) => h('label', {}, text, fields[key]);
    this.node.append(
      note ? h('div', { className: 'jp-deploy-muted' }, note) : '',
      label('Checkpoint', 'checkpoint'), label('Node', 'node'),
      label('Inputs', 'inputs'), label('Outputs', 'outputs'),
      label('Runtime', 'runtime'), label('Minimum instances', 'min'), label('Maximum instances', 'max'));
  }

  getValue(): DeployRequest {
    const f = this.fields;
    return {
      checkpoint: f.checkpoint.value.trim(), node: f.node.value.trim(), inputs: f.inputs.value,
      outputs: f.outputs.value, runtime: f.runtime.value, min: Number(f.min.value), max: Number(f.max.value)
    };
  }
}

function input(name: string, value: string | number, type = 'text'): HTMLInputElement {
  return h('input', { className: 'jp-mod-styled', name, value, type });
}

/** Steps and kernel output while the cell is pinned and its node comes up. */
class Progress extends Widget {
  private steps = h('ol', { className: 'jp-deploy-steps' });
  private output = h('pre', { className: 'jp-deploy-progress-output' });

  constructor() {
    super();
    this.addClass('jp-deploy-progress');
    this.node.append(this.steps, this.output);
  }

  step(text: string): HTMLElement {
    const item = h('li', {}, text);
    this.steps.append(item);
    return item;
  }

  print(text: string): void {
    this.output.append(text);
    this.output.scrollTop = this.output.scrollHeight;
  }
}

/** The control API as followNode needs it. */
const api: FollowAPI = {
  async node(name) {
    try {
      return await requestAPI<NodeInfo>(`nodes/${name}`);
    } catch (error) {
      if (error instanceof APIError && error.status === 404) {
        return null; // not created yet
      }
      throw error;
    }
  },
  async events(name, since, wait, signal) {
    const query = `node=${encodeURIComponent(name)}&since=${since}&wait=${wait}`;
    return (await requestAPI<{ events: DeployEvent[] }>(`events?${query}`, { signal })).events;
  }
};

/** The "Deploy cell" command: the dialog, then pin and create through the kernel's magics. */
export async function deployCell(panel: NotebookPanel, defaultRuntime: string): Promise<void> {
  const cell = panel.content.activeCell;
  const kernel = panel.sessionContext.session?.kernel;
  if (!cell || cell.model.type !== 'code') {
    await showDialog({ title: 'Deploy cell', body: 'Select a code cell first.', buttons: [Dialog.okButton()] });
    return;
  }
  if (!kernel) {
    await showDialog({ title: 'Deploy cell', body: 'The notebook has no kernel running.', buttons: [Dialog.okButton()] });
    return;
  }
  const { name, body } = splitPin(cell.model.sharedModel.getSource());
  let guessed: Guess = { inputs: [], outputs: [] };
  let note = '';
  try {
    guessed = await guess(kernel, body);
    note = guessed.error ?? '';
  } catch (error) {
    note = `jupyter_deploy could not guess the inputs in this kernel (${(error as Error).message}).`;
  }
  const checkpoint = toName(name || guessed.outputs[0] || 'cell', 'cell');
  const runtime = h('select', { className: 'jp-mod-styled', name: 'runtime' },
    ...['process', 'docker'].map(r => h('option', { value: r, selected: r === defaultRuntime }, r)));
  const form = new DeployForm({
    checkpoint: input('checkpoint', checkpoint), node: input('node', `${checkpoint}-node`),
    inputs: input('inputs', guessed.inputs.join(',')), outputs: input('outputs', guessed.outputs.join(',')),
    runtime, min: input('min', 1, 'number'), max: input('max', 1, 'number')
  }, note);
  const result = await showDialog({
    title: 'Deploy cell', body: form,
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Deploy' })]
  });
  if (!result.button.accept || !result.value) {
    return;
  }
  await deploy(kernel, result.value, body);
}

async function deploy(kernel: Kernel.IKernelConnection, request: DeployRequest, body: string): Promise<void> {
  const progress = new Progress();
  void showDialog({ title: `Deploying ${request.node}`, body: progress, buttons: [Dialog.okButton({ label: 'Close' })] });
  const [pin, create] = magics(request, body);
  const steps: [string, string][] = [
    ['Loading jupyter_deploy in the kernel', "get_ipython().extension_manager.load_extension('jupyter_deploy')"],
    [`Pinning checkpoint ${request.checkpoint} (runs the cell)`, pin],
    [`Creating node ${request.node}` + (request.runtime === 'docker' ? ' (builds its image)' : ''), create]
  ];
  for (const [text, code] of steps) {
    const line = progress.step(`${text}…`);
    // while the node is created, its status follows the event stream
    const following = code === create ? follow(request.node, progress) : null;
    try {
      await run(kernel, code, t => progress.print(t));
      line.textContent = `${text}: done`;
    } catch (error) {
      const [headline, ...details] = (error as Error).message.split('\n');
      line.textContent = `${text}: failed — ${headline}`;
      line.classList.add('jp-deploy-error');
      if (details.length) {
        progress.print(`${details.join('\n')}\n`);
      }
      await following?.stop();
      return;
    }
    const node = await following?.stop();
    if (node?.status === 'Healthy') {
      progress.step(`Ready: ${node.endpoint}`).classList.add('jp-deploy-ready');
    }
  }
}

/** Follow the node on its own progress line until stop(); stop() gives the node as it is. */
function follow(name: string, progress: Progress): { stop: () => Promise<NodeInfo | null> } {
  const line = progress.step(`Node ${name}: starting…`);
  const show = (node: NodeInfo) => (line.textContent = describeNode(node));
  const controller = new AbortController();
  const failed = (error: unknown) => {
    line.textContent = `Node ${name}: ${(error as Error).message}`;
    line.classList.add('jp-deploy-error');
    return null;
  };
  const watching = followNode(api, name, show, controller.signal, Date.now() + 180_000).catch(failed);
  return {
    async stop() {
      controller.abort();
      await watching;
      const node = await api.node(name).catch(failed);
      if (node) {
        show(node);
      }
      return node;
    }
  };
}
