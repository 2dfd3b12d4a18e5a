/** The product's words, exactly as jupyter_deploy.models spells them. */
export enum NodeStatus {
  CREATED = 'Created',
  HEALTHY = 'Healthy',
  UNHEALTHY = 'Unhealthy',
  DELETING = 'Deleting'
}

export enum InstanceStatus {
  UNDEFINED = 'Undefined',
  CREATED = 'Created',
  STARTED = 'Started',
  PREPARING = 'Preparing',
  HEALTHY = 'Healthy',
  UNHEALTHY = 'Unhealthy',
  DELETING = 'Deleting'
}

/** The colour a badge takes: good, bad, busy (on its way) or idle. */
export type Tone = 'good' | 'bad' | 'busy' | 'idle';

const TONES: Record<string, Tone> = {
  [InstanceStatus.UNDEFINED]: 'idle',
  [InstanceStatus.CREATED]: 'busy',
  [InstanceStatus.STARTED]: 'busy',
  [InstanceStatus.PREPARING]: 'busy',
  [InstanceStatus.HEALTHY]: 'good',
  [InstanceStatus.UNHEALTHY]: 'bad',
  [InstanceStatus.DELETING]: 'idle'
};

/** The CSS class of a status badge; an unknown word gets the idle colour. */
export function badgeClass(status: string | null | undefined): string {
  return `jp-deploy-badge jp-deploy-badge-${TONES[status ?? ''] ?? 'idle'}`;
}
