/**
 * The mailbox's master category list (outlookuser-post-mastercategories.md): the category that marks exported
 * items is created there, with the policy's colour, before the first item carries it; Outlook shows categories
 * missing from the list without colour. Shared by every Outlook record type. Known names are cached per process,
 * so a steady-state cycle spends no request on it.
 */
import type { Client } from '@microsoft/microsoft-graph-client';
import { gated } from './batch';
import { classifyGraphError } from './errors';

const enc = encodeURIComponent;
const known = new Set<string>();

/** Graph's 25 preset colours (preset0…preset24) and `none`. */
export const CATEGORY_COLORS: readonly string[] = ['none', ...Array.from({ length: 25 }, (_, i) => `preset${i}`)];

interface OutlookCategory {
  id: string;
  displayName: string;
  color: string;
}

export async function ensureMasterCategory(client: Client, mailbox: string, category: { name: string; color: string }): Promise<void> {
  const key = `${mailbox.toLowerCase()}\u0000${category.name.toLowerCase()}`;
  if (known.has(key)) return;
  const path = `/users/${enc(mailbox)}/outlook/masterCategories`;
  const list = async () => ((await gated(mailbox, () => client.api(path).get())) as { value?: OutlookCategory[] }).value ?? [];
  const exists = (cats: OutlookCategory[]) => cats.some((c) => c.displayName.toLowerCase() === category.name.toLowerCase());
  if (!exists(await list())) {
    const color = CATEGORY_COLORS.includes(category.color) ? category.color : 'none';
    try {
      await gated(mailbox, () => client.api(path).post({ displayName: category.name, color }));
    } catch (err) {
      // Created meanwhile (another worker, or the user): names are unique, so a conflict means it is there.
      if (classifyGraphError(err).status !== 409 || !exists(await list())) throw err;
    }
  }
  known.add(key);
}

/** Forgets what was learnt (tests that reset the emulator). */
export function forgetMasterCategories(): void {
  known.clear();
}
