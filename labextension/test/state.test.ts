import { magics, recreateMagic, splitPin, toName } from '../src/magic';
import { restartsByInstance } from '../src/state';
import { rates } from '../src/panel/sparkline';
import { badgeClass, InstanceStatus, NodeStatus } from '../src/statuses';
import { rulesBody, rulesOf, toRouting, validateRules, validateWeights } from '../src/weights';

describe('status badges', () => {
  it('colours each status by what it means', () => {
    expect(badgeClass(NodeStatus.HEALTHY)).toContain('jp-deploy-badge-good');
    expect(badgeClass(NodeStatus.UNHEALTHY)).toContain('jp-deploy-badge-bad');
    expect(badgeClass(NodeStatus.CREATED)).toContain('jp-deploy-badge-busy');
    expect(badgeClass(NodeStatus.DELETING)).toContain('jp-deploy-badge-idle');
    for (const s of [InstanceStatus.STARTED, InstanceStatus.PREPARING]) {
      expect(badgeClass(s)).toContain('jp-deploy-badge-busy');
    }
    expect(badgeClass(InstanceStatus.UNDEFINED)).toContain('jp-deploy-badge-idle');
  });

  it('gives an unknown or missing status the idle colour', () => {
    expect(badgeClass('Exploded')).toContain('jp-deploy-badge-idle');
    expect(badgeClass(null)).toContain('jp-deploy-badge-idle');
  });
});

describe('alias weights', () => {
  it('accepts whole weights that sum to 100', () => {
    const rows = [{ node: 'a', weight: 90 }, { node: 'b', weight: '10' }];
    expect(validateWeights(rows)).toEqual([]);
    expect(toRouting(rows)).toEqual({ a: 90, b: 10 });
  });

  it('says what the weights sum to when it is not 100', () => {
    expect(validateWeights([{ node: 'a', weight: 50 }, { node: 'b', weight: 20 }]))
      .toEqual(['the weights sum to 70, not 100']);
  });

  it('refuses no node, a node twice, a missing node and bad weights', () => {
    expect(validateWeights([])).toEqual(['an alias needs at least one node']);
    expect(validateWeights([{ node: 'a', weight: 50 }, { node: 'a', weight: 50 }]))
      .toEqual(['node a is listed twice']);
    expect(validateWeights([{ node: '', weight: 100 }])).toEqual(['choose a node for each row']);
    for (const weight of ['', '1.5', -1, 101, 'x']) {
      expect(validateWeights([{ node: 'a', weight }])).toEqual([
        'the weight of a must be a whole number from 0 to 100'
      ]);
    }
  });
});

describe('deploy cell', () => {
  it('takes the name off a %%deploy pin line and keeps the body', () => {
    expect(splitPin('%%deploy pin predict --inputs x1\nprediction = f(x1)')).toEqual({
      name: 'predict', body: 'prediction = f(x1)'
    });
    expect(splitPin('y = 1')).toEqual({ name: '', body: 'y = 1' });
  });

  it('writes the magics the kernel runs', () => {
    const [pin, create] = magics({
      checkpoint: 'predict', node: 'predictor', inputs: 'x1:float, x2:float', outputs: 'prediction',
      runtime: 'process', min: 1, max: 2
    }, 'prediction = f(x1, x2)');
    expect(pin).toBe('%%deploy pin predict --inputs x1:float,x2:float --outputs prediction\nprediction = f(x1, x2)');
    expect(create).toBe('%deploy node create predictor --checkpoint predict --min 1 --max 2 --runtime process');
  });

  it('makes DNS-label names', () => {
    expect(toName('My_Model v2', 'x')).toBe('my-model-v2');
    expect(toName('__', 'cell')).toBe('cell');
  });
});

describe('sparklines', () => {
  it('turns counter totals into request rates and mean latencies', () => {
    const series = rates([
      { time: 0, requests: 0, duration_sum: 0 },
      { time: 2, requests: 10, duration_sum: 0.5 },
      { time: 4, requests: 10, duration_sum: 0.5 }
    ]);
    expect(series.rate).toEqual([5, 0]);
    expect(series.latency).toEqual([50, 0]);
  });
});

describe('restarts per instance', () => {
  const e = (seq: number, instance: string, status: string, message = '') => ({ seq, time: seq, node: 'n', instance, status, message });

  it('carries a failed instance\'s count to its replacement, not to a scale-up', () => {
    const events = [
      e(1, 'a', 'Created', 'pid 10'), e(2, 'a', 'Healthy'),
      e(3, 'a', 'Deleting', 'the instance exited (code -9)'), e(4, 'a', '', 'removed'),
      e(5, 'b', 'Created', 'pid 11'), e(6, 'b', 'Healthy'),
      e(7, 'b', 'Deleting', 'the instance exited (code 3)'), e(8, 'b', 'Deleting', 'the instance exited (code 3)'),
      e(9, 'c', 'Created', 'pid 12'),
      e(10, 'd', 'Created', 'pid 13'),
      e(11, 'd', 'Deleting', 'scaled down: fewer requests')
    ];
    const restarts = restartsByInstance(events);
    expect([...restarts]).toEqual([['a', 0], ['b', 1], ['c', 2], ['d', 0]]);
  });
});

describe('alias shadow and sticky rules', () => {
  const rows = [{ node: 'a', weight: 100 }, { node: 'b', weight: 0 }];

  it('reads the API\'s rules and gives them back', () => {
    const rules = rulesOf({ shadow: { node: 'b', percent: 5 }, sticky: { header: 'x-user' } });
    expect(rules).toEqual({ shadowNode: 'b', shadowPercent: 5, stickyKind: 'header', stickyName: 'x-user' });
    expect(validateRules(rules, rows)).toEqual([]);
    expect(rulesBody(rules)).toEqual({ shadow: { node: 'b', percent: 5 }, sticky: { header: 'x-user' } });
    expect(rulesBody(rulesOf({}))).toEqual({ shadow: null, sticky: null });
  });

  it('refuses a shadow that takes traffic, a bad percent and an unnamed sticky key', () => {
    const rules = { shadowNode: 'a', shadowPercent: 150, stickyKind: 'input' as const, stickyName: ' ' };
    expect(validateRules(rules, rows)).toEqual([
      'the shadow percent must be a number from 0 to 100',
      'the shadow node a takes traffic already: give it a weight of 0 or pick another',
      'name the input that keeps a caller on one node'
    ]);
  });
});

describe('the %deploy record cell', () => {
  it('recreates the node and its aliases, quoting what needs it, with no key', () => {
    const cell = recreateMagic(
      { name: 'predictor', image: '', runtime: 'process', min: 1, max: 2, env: { GREETING: 'hello world' } },
      'predict@3', [{ name: 'stable', nodes: { predictor: 80, other: 20 }, public: true,
        shadow: { node: 'canary', percent: 5 }, sticky: { header: 'x-user' } }], '2026-12-01');
    expect(cell.split('\n').slice(2)).toEqual([
      '%load_ext jupyter_deploy',
      "%deploy node create predictor --checkpoint predict@3 --min 1 --max 2 --runtime process --env 'GREETING=hello world'",
      '%deploy alias set stable predictor=80 other=20 --public --shadow canary=5 --sticky header:x-user'
    ]);
    expect(recreateMagic({ name: 'web', image: 'nginx:1.27', runtime: 'docker', min: 1, max: 1, port: 80 }, '', [], 'now'))
      .toContain('%deploy node create web --image nginx:1.27 --port 80 --min 1 --max 1 --runtime docker');
  });
});
