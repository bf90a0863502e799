// The page's few building blocks. Everything from the chain, IPFS or a record is put into the
// DOM as text (textContent, attributes), never parsed as HTML.
import { UserFacingError } from "./session";

type Attrs = Record<string, string>;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  content?: string | (Node | string)[],
  attrs: Attrs = {},
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (typeof content === "string") node.textContent = content;
  else if (content) node.append(...content);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

let ids = 0;

/** An input with its label (every control is named for screen readers). */
export function field<T extends HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>(
  label: string,
  control: T,
  hint?: string,
): { row: HTMLElement; control: T } {
  const id = `f${++ids}`;
  control.id = id;
  const row = el("div", [el("label", label, { for: id })], { class: "field" });
  if (hint) {
    const hintId = `${id}-hint`;
    row.append(el("small", hint, { id: hintId }));
    control.setAttribute("aria-describedby", hintId);
  }
  row.append(control);
  return { row, control };
}

export const input = (attrs: Attrs = {}) => el("input", undefined, { type: "text", autocomplete: "off", ...attrs });

export function select(options: [value: string, text: string][], attrs: Attrs = {}): HTMLSelectElement {
  const node = el("select", undefined, attrs);
  for (const [value, text] of options) node.append(el("option", text, { value }));
  return node;
}

/** A live region for one view's outcome: a status for success, an alert for a refusal. */
export class Notice {
  readonly node = el("div", undefined, { class: "notice", "aria-live": "polite" });

  ok(text: string): void {
    this.node.replaceChildren(el("p", text, { role: "status", class: "ok" }));
  }

  fail(error: unknown): void {
    const text = error instanceof UserFacingError ? error.message : `Something went wrong: ${(error as Error).message ?? String(error)}`;
    this.node.replaceChildren(el("p", text, { role: "alert", class: "error" }));
  }

  busy(text: string): void {
    this.node.replaceChildren(el("p", text, { role: "status", class: "busy" }));
  }

  clear(): void {
    this.node.replaceChildren();
  }
}

/** A button that runs `work` once at a time, showing what it is doing and how it ended. */
export function action(label: string, notice: Notice, work: () => Promise<string | void>, busyText = `${label}…`) {
  const button = el("button", label, { type: "button" });
  button.addEventListener("click", async () => {
    if (button.disabled) return;
    button.disabled = true;
    notice.busy(busyText);
    try {
      const done = await work();
      if (done) notice.ok(done);
      else notice.clear();
    } catch (error) {
      notice.fail(error);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

export const section = (title: string, ...content: (Node | string)[]) => el("section", [el("h2", title), ...content]);

export function when(seconds: bigint | number): string {
  const n = Number(seconds);
  if (n >= 2 ** 39) return "no end";
  return new Date(n * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

/** Offers `data` as a file download (a Blob URL of this origin; nothing leaves the browser). */
export function download(data: Uint8Array, filename: string, type = "application/octet-stream"): void {
  const url = URL.createObjectURL(new Blob([data as Uint8Array<ArrayBuffer>], { type }));
  const link = el("a", undefined, { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
