import { DeployEvent, describeNode, FollowAPI, followNode } from '../src/follow';
import { NodeInfo } from '../src/panel/model';

function node(status: string, instances: [string, string][] = []): NodeInfo {
  return {
    name: 'adder', status, checkpoint: 'adder@1', image: '', runtime: 'process', min: 1, max: 1,
    suspended: false, endpoint: 'http://gw/v1/nodes/adder:execute',
    instances: instances.map(([s, message], i) => ({ id: `adder-${i}`, status: s, message, runtime: 'process' }))
  };
}

/** A control API whose node changes only when the test emits an event, as the service's does. */
class FakeAPI implements FollowAPI {
  states: (NodeInfo | null)[];
  nodeCalls = 0;
  waits: { since: number; wait: number }[] = [];
  private seq = 0;
  private pending: ((events: DeployEvent[]) => void) | null = null;

  constructor(...states: (NodeInfo | null)[]) {
    this.states = states;
  }

  async node(): Promise<NodeInfo | null> {
    this.nodeCalls += 1;
    return this.states[Math.min(this.seq, this.states.length - 1)];
  }

  events(_name: string, since: number, wait: number, signal: AbortSignal): Promise<DeployEvent[]> {
    this.waits.push({ since, wait });
    return new Promise((resolve, reject) => {
      this.pending = resolve;
      signal.addEventListener('abort', () => reject(new Error('aborted')));
    });
  }

  /** The next status change: the long poll answers with it. */
  async emit(): Promise<void> {
    await until(() => this.pending !== null);
    this.seq += 1;
    const answer = this.pending!;
    this.pending = null;
    answer([{ seq: this.seq, node: 'adder', instance: null, status: null, message: '' }]);
  }
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !condition(); i++) {
    await new Promise(resolve => setTimeout(resolve, 0));
  }
  expect(condition()).toBe(true);
}

describe('following a node on the event stream', () => {
  it('shows the node after each event and stops once it is Healthy', async () => {
    const api = new FakeAPI(
      null, node('Created', [['Preparing', 'restoring the checkpoint']]), node('Healthy', [['Healthy', 'ready']]));
    const shown: string[] = [];
    const following = followNode(api, 'adder', n => shown.push(describeNode(n)), new AbortController().signal,
      Date.now() + 60_000);
    await api.emit();
    await api.emit();
    const last = await following;
    expect(last?.status).toBe('Healthy');
    expect(shown).toEqual([
      'Node adder: Created — instances: Preparing (restoring the checkpoint)',
      'Node adder: Healthy — instances: Healthy (ready)'
    ]);
    // one look at the node per answer of the stream: no polling in between
    expect(api.nodeCalls).toBe(3);
    expect(api.waits).toEqual([{ since: 0, wait: 30 }, { since: 1, wait: 30 }]);
  });

  it('waits no longer than the deadline, and stops when aborted', async () => {
    const api = new FakeAPI(node('Created'));
    const controller = new AbortController();
    const following = followNode(api, 'adder', () => undefined, controller.signal, Date.now() + 2_500);
    await until(() => api.waits.length === 1);
    expect(api.waits[0].wait).toBe(3);
    controller.abort();
    expect((await following)?.status).toBe('Created');
    expect(api.nodeCalls).toBe(1);
  });

  it('returns at once when the deadline has passed', async () => {
    const api = new FakeAPI(node('Unhealthy'));
    const last = await followNode(api, 'adder', () => undefined, new AbortController().signal, Date.now() - 1);
    expect(last?.status).toBe('Unhealthy');
    expect(api.waits).toEqual([]);
  });
});
