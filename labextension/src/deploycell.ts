import { Clipboard, Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { Cell } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import { APIError, requestAPI } from './api';
import { DeployEvent, describeNode, FollowAPI, followNode } from './follow';
import { __ } from './i18n';
import { DeployRequest, deployedAt, magics, recreateMagic, splitPin, toName } from './magic';
import { showKey } from './panel/aliases';
import { h } from './panel/dom';
import { NodeInfo } from './panel/model';

const NODE_MIME = 'application/vnd.jupyter-deploy.node+json';
const ANSI = /\u001b\[[0-9;]*m/g;
const KEY = /jd_[A-Za-z0-9_-]{8,}/g; // a key never reaches the screen from kernel output

/** A kernel error with its traceback (colours removed, keys masked). */
export class KernelError extends Error {
  constructor(
    message: string,
    readonly traceback: string
  ) {
    super(message);
  }
}

interface Guess {
  inputs: string[];
  outputs: string[];
  error?: string;
}

/** What the node-create magic announced (the key among it), if it did. */
interface Created {
  node: string;
  endpoint: string;
  key: string;
  status: string;
}

/** Run code in the kernel without touching the notebook's outputs; an error throws KernelError. */
async function run(kernel: Kernel.IKernelConnection, code: string, out: (text: string) => void = () => undefined,
  created: (data: Created) => void = () => undefined): Promise<void> {
  const future = kernel.requestExecute({ code, store_history: false, stop_on_error: true });
  let failure: KernelError | null = null;
  const stderr: string[] = [];
  future.onIOPub = msg => {
    if (KernelMessage.isStreamMsg(msg)) {
      out(msg.content.text);
      if (msg.content.name === 'stderr') {
        stderr.push(msg.content.text);
      }
    } else if (KernelMessage.isErrorMsg(msg)) {
      const traceback = msg.content.traceback.join('\n').replace(ANSI, '').replace(KEY, 'jd_…');
      failure = new KernelError(`${msg.content.ename}: ${msg.content.evalue}`.replace(KEY, 'jd_…'), traceback);
    } else if (KernelMessage.isExecuteResultMsg(msg) || KernelMessage.isDisplayDataMsg(msg)) {
      const announced = msg.content.data[NODE_MIME] as unknown as Created | undefined;
      if (announced) {
        created(announced);
      }
    }
  };
  const reply = await future.done;
  if (failure) {
    throw failure;
  }
  if (reply.content.status !== 'ok') {
    throw new KernelError(__('the kernel answered %1', reply.content.status), stderr.join('').replace(KEY, 'jd_…'));
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
      label(__('Checkpoint'), 'checkpoint'), label(__('Node'), 'node'),
      label(__('Inputs'), 'inputs'), label(__('Outputs'), 'outputs'),
      label(__('Runtime'), 'runtime'), label(__('Minimum instances'), 'min'), label(__('Maximum instances'), 'max'),
      h('label', { className: 'jp-deploy-check-label' }, fields.record, __('Write the %deploy commands into a cell below')));
  }

  getValue(): DeployRequest {
    const f = this.fields;
    return {
      checkpoint: f.checkpoint.value.trim(), node: f.node.value.trim(), inputs: f.inputs.value,
      outputs: f.outputs.value, runtime: f.runtime.value, min: Number(f.min.value), max: Number(f.max.value),
      record: (f.record as HTMLInputElement).checked
    };
  }
}

function input(name: string, value: string | number, type = 'text'): HTMLInputElement {
  return h('input', { className: 'jp-mod-styled', name, value, type });
}

/** The control API as followNode needs it. */
const api: FollowAPI = {
  async node(name) {
    try {
      return await requestAPI<NodeInfo>(`nodes/${name}?project=`);
    } catch (error) {
      if (error instanceof APIError && error.status === 404) {
        return null; // not created yet
      }
      throw error;
    }
  },
  async events(name, since, wait, signal) {
    const query = `project=&node=${encodeURIComponent(name)}&since=${since}&wait=${wait}`;
    return (await requestAPI<{ events: DeployEvent[] }>(`events?${query}`, { signal })).events;
  }
};

/** The "Deploy cell" command: the form, then pin and create through the kernel's magics. */
export async function deployCell(panel: NotebookPanel, defaultRuntime: string,
  open: (node: string, tab?: string) => void): Promise<void> {
  const cell = panel.content.activeCell;
  const kernel = panel.sessionContext.session?.kernel;
  if (!cell || cell.model.type !== 'code') {
    await showDialog({ title: __('Deploy cell'), body: __('Select a code cell first.'), buttons: [Dialog.okButton()] });
    return;
  }
  if (!kernel) {
    await showDialog({ title: __('Deploy cell'), body: __('The notebook has no kernel running.'), buttons: [Dialog.okButton()] });
    return;
  }
  const { name, body } = splitPin(cell.model.sharedModel.getSource());
  let guessed: Guess = { inputs: [], outputs: [] };
  let note = '';
  try {
    guessed = await guess(kernel, body);
    note = guessed.error ?? '';
  } catch (error) {
    note = __('jupyter_deploy could not guess the inputs in this kernel (%1).', (error as Error).message);
  }
  const checkpoint = toName(name || guessed.outputs[0] || 'cell', 'cell');
  const runtime = h('select', { className: 'jp-mod-styled', name: 'runtime' },
    ...['process', 'docker'].map(r => h('option', { value: r, selected: r === defaultRuntime }, r)));
  const form = new DeployForm({
    checkpoint: input('checkpoint', checkpoint), node: input('node', `${checkpoint}-node`),
    inputs: input('inputs', guessed.inputs.join(',')), outputs: input('outputs', guessed.outputs.join(',')),
    runtime, min: input('min', 1, 'number'), max: input('max', 1, 'number'), record: input('record', '', 'checkbox')
  }, note);
  const result = await showDialog({
    title: __('Deploy cell'), body: form,
    buttons: [Dialog.cancelButton({ label: __('Cancel') }), Dialog.okButton({ label: __('Deploy') })]
  });
  if (result.button.accept && result.value) {
    void deploy(kernel, result.value, body, cell, open).then(node => {
      if (node && result.value?.record) {
        writeRecord(panel, cell, result.value, node);
      }
    }); // the notebook stays usable meanwhile
  }
}

/** The `%deploy` commands that make the node again, in a new cell below the deployed one. */
function writeRecord(panel: NotebookPanel, cell: Cell, request: DeployRequest, node: NodeInfo): void {
  const index = panel.content.widgets.indexOf(cell);
  const source = recreateMagic(node, node.checkpoint.includes('@') ? node.checkpoint : request.checkpoint, [],
    deployedAt());
  panel.content.model?.sharedModel.insertCell(index < 0 ? panel.content.widgets.length : index + 1,
    { cell_type: 'code', source, metadata: {} });
}

/** Show a failure's traceback in a dialog. */
function showTraceback(title: string, traceback: string): void {
  void showDialog({
    title, body: new Widget({ node: h('pre', { className: 'jp-deploy-traceback' }, traceback) }),
    buttons: [Dialog.okButton({ label: __('Close') })]
  });
}

/** Pin, create and follow the node, with progress in a notification (not a modal dialog). */
async function deploy(kernel: Kernel.IKernelConnection, request: DeployRequest, body: string, cell: Cell,
  open: (node: string, tab?: string) => void): Promise<NodeInfo | null> {
  const openNode = { label: __('Open node'), callback: () => open(request.node) };
  const id = Notification.emit(__('Deploying %1: loading jupyter_deploy…', request.node), 'in-progress', { autoClose: false });
  const say = (message: string, type: Notification.TypeOptions = 'in-progress', actions: Notification.IAction[] = []) =>
    Notification.update({ id, message, type, autoClose: type === 'success' ? 10000 : false, actions });
  const [pin, create] = magics(request, body);
  let created: Created | null = null;
  let deployed: NodeInfo | null = null;
  const steps: [string, string][] = [
    [__('Deploying %1: loading jupyter_deploy…', request.node), "get_ipython().extension_manager.load_extension('jupyter_deploy')"],
    [__('Deploying %1: pinning checkpoint %2 (runs the cell)…', request.node, request.checkpoint), pin],
    [request.runtime === 'docker' ? __('Deploying %1: creating the node and building its image…', request.node)
      : __('Deploying %1: creating the node…', request.node), create]
  ];
  for (const [text, code] of steps) {
    say(text, 'in-progress', code === create ? [openNode] : []);
    const following = code === create ? follow(request.node, line => say(line, 'in-progress', [openNode])) : null;
    try {
      await run(kernel, code, undefined, data => (created = data));
    } catch (error) {
      await following?.stop();
      const traceback = error instanceof KernelError ? error.traceback : '';
      const message = __('Deploying %1 failed: %2', request.node, (error as Error).message);
      say(message, 'error', [
        ...(traceback ? [{ label: __('Show traceback'), callback: () => showTraceback(message, traceback) }] : []),
        ...(code === create ? [openNode] : [])
      ]);
      return null;
    }
    const node = await following?.stop();
    if (code === create) {
      deployed = node ?? null;
      const made = created as Created | null;
      if (made?.key) {
        showKey(__('node %1', request.node), made.key);
      }
      record(cell, request, node ?? null);
      const endpoint = node?.endpoint ?? made?.endpoint ?? '';
      say(node?.status === 'Healthy' ? __('Node %1 is Healthy: %2', request.node, endpoint)
        : __('Node %1 is %2', request.node, node?.status ?? '?'), node?.status === 'Healthy' ? 'success' : 'warning',
      [openNode, ...(endpoint ? [{ label: __('Copy endpoint'), callback: () => Clipboard.copyToSystem(endpoint) }] : [])]);
    }
  }
  return deployed;
}

/** What was deployed from this cell, in its metadata: the notebook keeps the record. */
function record(cell: Cell, request: DeployRequest, node: NodeInfo | null): void {
  cell.model.setMetadata('jupyter_deploy', {
    checkpoint: request.checkpoint, node: request.node, runtime: request.runtime, min: request.min, max: request.max,
    checkpoint_id: node?.checkpoint_id ?? '', endpoint: node?.endpoint ?? '', deployed: new Date().toISOString()
  });
}

/** Follow the node until stop(), saying its status line; stop() gives the node as it is. */
function follow(name: string, say: (line: string) => void): { stop: () => Promise<NodeInfo | null> } {
  const controller = new AbortController();
  const failed = () => null;
  const watching = followNode(api, name, node => say(describeNode(node)), controller.signal, Date.now() + 180_000).catch(failed);
  return {
    async stop() {
      controller.abort();
      await watching;
      return api.node(name).catch(failed);
    }
  };
}
