import { badgeClass } from '../statuses';

type Child = Node | string | null | undefined | false;

/** A DOM element with attributes (on* as listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, any> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) {
      continue;
    }
    if (key.startsWith('on') && typeof value === 'function') {
      element.addEventListener(key.slice(2), value);
    } else if (key === 'className') {
      element.className = value;
    } else if (key === 'value') {
      (element as any).value = value;
    } else {
      element.setAttribute(key, value === true ? '' : String(value));
    }
  }
  for (const child of children) {
    if (child) {
      element.append(child);
    }
  }
  return element;
}

/** A status word as a coloured badge. */
export function badge(status: string, title = ''): HTMLElement {
  return h('span', { className: badgeClass(status), title: title || undefined }, status);
}

/** A JupyterLab-styled button. */
export function button(label: string, onclick: () => void, extra = ''): HTMLButtonElement {
  return h('button', { className: `jp-mod-styled jp-deploy-button ${extra}`, onclick }, label);
}

/** Where a section shows what the API answered wrong. */
export class ErrorLine {
  readonly node = h('div', { className: 'jp-deploy-error', role: 'alert' });

  show(error: unknown): void {
    this.node.textContent = error ? String((error as Error).message ?? error) : '';
  }

  clear(): void {
    this.node.textContent = '';
  }
}
