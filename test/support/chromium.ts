/**
 * Headless Chromium (Debian's, through playwright-core) with WebAuthn's
 * virtual authenticator over CDP, so browser tests run real passkey
 * ceremonies. Chromium is a service like PostgreSQL: absent on a newcomer's
 * laptop the browser tests skip; in CI (POSTERN_TEST_REQUIRE_SERVICES=1) they fail.
 */
import { access, constants } from 'node:fs/promises';
import { type Browser, type CDPSession, chromium, type Page } from 'playwright-core';
import type { Probe } from './services.ts';

export const CHROMIUM_PATH = process.env.POSTERN_TEST_CHROMIUM ?? '/usr/bin/chromium';

// Without the background-networking flags Chromium keeps dialling Google, which this network refuses.
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function probeChromium(): Promise<Probe> {
  try {
    await access(CHROMIUM_PATH, constants.X_OK);
    return { service: 'Chromium', available: true, reason: '' };
  } catch {
    return { service: 'Chromium', available: false, reason: `Chromium not found at ${CHROMIUM_PATH}` };
  }
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: ARGS, headless: true });
}

export interface VirtualAuthenticatorOptions {
  /** A synced passkey: backup eligible and backed up. Defaults to device-bound. */
  synced?: boolean;
  /** Defaults to true: the authenticator verifies the user (UV). */
  userVerified?: boolean;
  /** Defaults to true: discoverable credentials (resident keys). */
  residentKeys?: boolean;
}

export interface VirtualAuthenticator {
  cdp: CDPSession;
  id: string;
  credentials(): Promise<
    Array<{ credentialId: string; isResidentCredential: boolean; signCount: number; userHandle?: string }>
  >;
  remove(): Promise<void>;
  /** Whether the authenticator answers by itself, as a user touching it or picking a suggestion would. */
  setPresence(enabled: boolean): Promise<void>;
}

/** Adds a virtual platform authenticator to the page's browser context. */
export async function addVirtualAuthenticator(
  page: Page,
  options: VirtualAuthenticatorOptions = {},
): Promise<VirtualAuthenticator> {
  const { synced = false, userVerified = true, residentKeys = true } = options;
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      ctap2Version: 'ctap2_1',
      transport: 'internal',
      hasResidentKey: residentKeys,
      hasUserVerification: true,
      isUserVerified: userVerified,
      automaticPresenceSimulation: true,
      ...(synced ? { defaultBackupEligibility: true, defaultBackupState: true } : {}),
    },
  });
  return {
    cdp,
    id: authenticatorId,
    credentials: async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials,
    remove: async () => {
      await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId });
    },
    setPresence: async (enabled) => {
      await cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled });
    },
  };
}
