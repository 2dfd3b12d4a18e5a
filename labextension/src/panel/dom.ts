import { Clipboard } from '@jupyterlab/apputils';
import { closeIcon, copyIcon, LabIcon } from '@jupyterlab/ui-components';

import { __ } from '../i18n';
import { badgeClass } from '../statuses';

type Child = Node | string | null | undefined | false;

/** A DOM element with attributes (on* as listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, any> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  return build(document.createElement(tag), attrs, children);
}

function build<E extends HTMLElement>(element: E, attrs: Record<string, any>, children: Child[]): E {
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

/** A field of the Jupyter UI toolkit (`jp-text-field`, `jp-number-field`, `jp-select`), which
 * JupyterLab registers; its value is a string, as an input's. */
export type ToolkitField = HTMLElement & { value: string; disabled: boolean };

/**
 * The toolkit's text field, or its number field for `type: 'number'` (`min`, `max`: the field
 * keeps its value inside them). Label it with a `<label for>` its `id`, or an `aria-label`.
 */
export function textField(attrs: Record<string, any>): ToolkitField {
  const { type, ...rest } = attrs;
  const tag = type === 'number' ? 'jp-number-field' : 'jp-text-field';
  const element = build(document.createElement(tag) as ToolkitField, type === 'number' ? { 'hide-step': true, ...rest } : attrs, []);
  return element;
}

/** A visible label for a control, and the control: `<label for>` and, for the toolkit's fields
 * (whose label a screen reader may not follow into them), the same words as its aria-label. */
export function labelled(label: string, control: HTMLElement): HTMLElement[] {
  if (control.tagName.startsWith('JP-')) {
    control.setAttribute('aria-label', label);
  }
  return [h('label', { for: control.id }, label), control];
}

/** Whether a toolkit select under `root` has its list open: drawing it again now would close
 * the list under the user's pointer, so a refresh leaves it until the next one. */
export function choosing(root: ParentNode): boolean {
  return root.querySelector('jp-select[open]') !== null;
}

/** A `jp-option` of a toolkit select. */
export function option(value: string, label: string): HTMLElement {
  const element = build(document.createElement('jp-option'), {}, [label]);
  element.setAttribute('value', value); // the attribute, not only the property: a selector finds it
  return element;
}

/** The toolkit's select (`jp-select`) of these options, `chosen` selected; `onchange` gets the
 * value a user picks. */
export function selectField(attrs: Record<string, any>, options: [string, string][], chosen: string,
  onchange?: (value: string) => void): ToolkitField {
  const element = build(document.createElement('jp-select') as ToolkitField, attrs,
    options.map(([value, label]) => option(value, label)));
  // the select's value attribute picks its option once the options are in (an option's
  // `selected` attribute does not, when the select is built before it is shown)
  element.setAttribute('value', chosen);
  if (onchange) {
    element.addEventListener('change', () => onchange(element.value));
  }
  return element;
}

/** A status word as a coloured badge: the word itself says it, not the colour alone. */
export function badge(status: string, title = ''): HTMLElement {
  return h('span', { className: badgeClass(status), title: title || undefined }, __(status));
}

/** The Jupyter toolkit's button (`jp-button`, registered by JupyterLab itself: its toolbar
 * buttons are these), whose `disabled` the toolkit draws as disabled. */
export type ToolkitButton = HTMLElement & { disabled: boolean };

function toolkitButton(appearance: 'accent' | 'neutral' | 'stealth', className: string, onclick: () => void
): ToolkitButton {
  const element = document.createElement('jp-button') as ToolkitButton;
  element.setAttribute('appearance', appearance);
  element.className = className;
  element.addEventListener('click', () => {
    if (!element.hasAttribute('disabled')) {
      onclick();
    }
  });
  return element;
}

/** Enable or disable a toolkit button, for pointers and for screen readers alike. */
export function setEnabled(button: ToolkitButton, enabled: boolean): void {
  button.toggleAttribute('disabled', !enabled);
  button.setAttribute('aria-disabled', String(!enabled));
}

/** An icon button as JupyterLab's ToolbarButtonComponent draws it, named for what it does to
 * what ("Delete predictor"). */
export function iconButton(icon: LabIcon, label: string, onclick: () => void, extra = ''): ToolkitButton {
  const button = toolkitButton('stealth', `jp-ToolbarButtonComponent jp-deploy-icon-button ${extra}`, onclick);
  button.title = label;
  button.setAttribute('aria-label', label);
  button.append(icon.element({ tag: 'span', className: 'jp-ToolbarButtonComponent-icon' }));
  return button;
}

/** A Copy button that puts `text()` on the clipboard and says so. */
export function copyButton(text: () => string, what: string): ToolkitButton {
  const button = iconButton(copyIcon, __('Copy %1', what), () => {
    Clipboard.copyToSystem(text());
    button.classList.add('jp-deploy-copied');
    button.title = __('Copied');
    window.setTimeout(() => {
      button.classList.remove('jp-deploy-copied');
      button.title = __('Copy %1', what);
    }, 1500);
  }, 'jp-deploy-copy');
  return button;
}

/** A text button of the toolkit; `jp-mod-accept` in `extra` makes it the accent one. */
export function button(label: string, onclick: () => void, extra = ''): ToolkitButton {
  const appearance = extra.includes('jp-mod-accept') ? 'accent' : 'neutral';
  const element = toolkitButton(appearance, `jp-deploy-button ${extra}`, onclick);
  element.append(label);
  return element;
}

/** Where a control shows what the API answered wrong: beside it, dismissible, cleared on success. */
export class ErrorLine {
  readonly node = h('div', { className: 'jp-deploy-error', role: 'alert' });

  show(error: unknown): void {
    const text = error ? String((error as Error).message ?? error) : '';
    this.node.replaceChildren();
    this.node.classList.toggle('jp-deploy-error-shown', Boolean(text));
    if (text) {
      this.node.append(h('span', { className: 'jp-deploy-error-text' }, text),
        iconButton(closeIcon, __('Dismiss'), () => this.clear(), 'jp-deploy-dismiss'));
    }
  }

  clear(): void {
    this.show(null);
  }
}

/** Run an action whose failure shows in `error`; a success clears it. */
export async function guarded(error: ErrorLine, action: () => Promise<unknown>): Promise<boolean> {
  error.clear();
  try {
    await action();
    return true;
  } catch (e) {
    error.show(e);
    return false;
  }
}
