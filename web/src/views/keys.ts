// "Your encryption key": set up (a random key, sealed here under a passphrase, then published),
// unlock, import a backup or key file, export the key file for safekeeping.
import { keccak256 } from "viem";
import type { App, View } from "../app/app";
import { createKeys, importKeys, newestPair, storedKeyFile, unlockKeys } from "../app/keys";
import { UserFacingError } from "../app/session";
import { action, download, el, field, input, Notice, section } from "../app/ui";

const NO_KEY = `0x${"00".repeat(32)}`;

export const keysView: View = {
  id: "keys",
  title: "Your key",
  async render(app) {
    const { session } = app;
    const [keyHash, kept] = await Promise.all([
      session.read<string>("ParticipantRegistry", "encryptionKeyHash", [session.account]),
      storedKeyFile(session.account),
    ]);
    const registered = keyHash !== NO_KEY;
    const notice = new Notice();
    const parts: (Node | string)[] = [];
    const matches = app.keys?.published(session, keyHash) !== undefined;
    parts.push(el("p", state(registered, kept !== undefined, app.keys !== undefined, matches), { class: "state" }));

    if (!kept && !registered) parts.push(setUp(app, notice));
    if (kept && !app.keys) parts.push(unlock(app, notice));
    if (app.keys && !matches) parts.push(publish(app, notice, registered));
    parts.push(importer(app, notice));
    if (kept) {
      parts.push(
        section(
          "Keep a copy",
          el("p", "The key file is sealed under your passphrase. Keep a copy somewhere else: `medvault keys import FILE` reads it too."),
          action("Export the key file", notice, async () => {
            download(kept, `${session.account}.keys`);
            return "The sealed key file was offered as a download.";
          }),
        ),
      );
    }
    parts.push(notice.node);
    return el("div", [el("h2", "Your encryption key"), ...parts]);
  },
};

function state(registered: boolean, kept: boolean, unlocked: boolean, matches: boolean): string {
  if (!registered && !kept) return "You have no encryption key yet. Set one up to receive records.";
  if (!registered) return "Your key is kept in this browser but not published yet.";
  if (!kept) return "Your key is on chain, but not in this browser: import your backup or key file.";
  if (!unlocked) return "Your key is kept in this browser, sealed. Unlock it to read your records.";
  return matches ? "Your key is unlocked and matches the one on chain." : "The unlocked key file does not hold the key on chain.";
}

function passphrase(label: string, autocomplete = "current-password") {
  return field(label, input({ type: "password", autocomplete, minlength: "8" }));
}

function setUp(app: App, notice: Notice): HTMLElement {
  const first = passphrase("New passphrase", "new-password");
  const again = passphrase("Repeat the passphrase", "new-password");
  return section(
    "Set up your key",
    el("p", "A random key is made in this browser and sealed under your passphrase; only its public half goes on chain."),
    first.row,
    again.row,
    action("Create and publish my key", notice, async () => {
      if (first.control.value !== again.control.value) throw new UserFacingError("the two passphrases differ");
      app.keys = await createKeys(app.session.account, first.control.value);
      return publishKey(app);
    }),
  );
}

function unlock(app: App, notice: Notice): HTMLElement {
  const secret = passphrase("Passphrase");
  return section(
    "Unlock",
    secret.row,
    action("Unlock", notice, async () => {
      app.keys = await unlockKeys(app.session.account, secret.control.value);
      app.refresh();
    }),
  );
}

function publish(app: App, notice: Notice, registered: boolean): HTMLElement {
  return section(
    registered ? "Publish this key" : "Publish your key",
    el("p", registered ? "The chain holds another key: publishing this one replaces it for new records." : "Records can be written for you once your key is on chain."),
    action("Publish the key", notice, () => publishKey(app)),
  );
}

async function publishKey(app: App): Promise<string> {
  const pair = newestPair(app.keys!, app.session);
  await app.session.transact("ParticipantRegistry", "register", [`0x${toHex(pair.publicKey)}`]);
  app.refresh();
  return `Your key ${keccak256(pair.publicKey).slice(0, 10)}… is published.`;
}

const toHex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

function importer(app: App, notice: Notice): HTMLElement {
  const file = field("Backup or key file", el("input", undefined, { type: "file" }));
  const filePass = passphrase("The file's passphrase");
  const parts: HTMLElement[] = [file.row, filePass.row];
  const own = app.keys ? undefined : passphrase("A passphrase for this browser (blank: the file's)", "new-password");
  if (own) parts.push(own.row);
  return section(
    "Import a backup",
    el("p", "A backup from `medvault keys export`, or a key file. The account key a backup also holds is not kept: your wallet holds the account."),
    ...parts,
    action("Import", notice, async () => {
      const chosen = file.control.files?.[0];
      if (!chosen) throw new UserFacingError("choose a backup or key file first");
      const data = new Uint8Array(await chosen.arrayBuffer());
      const mine = own?.control.value || filePass.control.value;
      const { keys, added } = await importKeys(app.session.account, data, filePass.control.value, app.keys, mine);
      app.keys = keys;
      app.refresh();
      return `${added} key${added === 1 ? "" : "s"} added.`;
    }),
  );
}
