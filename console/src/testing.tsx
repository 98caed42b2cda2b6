// Test helpers (Vitest only): a fake gateway and a screen mounted in a signed-in session.
import { act, render } from "@testing-library/react";
import type { ReactNode } from "react";
import { Api } from "./api/client";
import type { Live, PushedEvent } from "./api/live";
import type { Role } from "./api/types.gen";
import { formatTime, I18nContext, translator } from "./i18n";
import { makeSession, SessionContext } from "./session";

const REFUSAL = Symbol("refusal");
/** A reply that is the gateway's error envelope (`{ok: false, error}`, HTTP 422) instead of data. */
export const refusal = (code: string, message: string, details?: unknown) => ({ [REFUSAL]: { code, message, details } });

/** A gateway that answers from `replies` (by command name, or `"GET /keys"`-style for the other
 * routes; bytes (a Uint8Array) are sent as the raw body, as the export route does; a `refusal(...)` as
 * the error envelope) and records every call it was sent. A reply may be a function of the request's body. */
export function fakeGateway(replies: Record<string, unknown>) {
  const calls: { command: string; body: any; headers: Record<string, string> }[] = [];
  const fetcher = (async (url: string, init: RequestInit) => {
    const path = String(url).replace(/^\/api\/v1/, "");
    const command = path.startsWith("/commands/") ? path.slice("/commands/".length) : `${init.method} ${path}`;
    calls.push({ command, body: JSON.parse(String(init.body ?? "null")), headers: (init.headers ?? {}) as Record<string, string> });
    const reply = replies[command];
    const data = typeof reply === "function" ? reply(calls[calls.length - 1].body) : reply;
    if (data && typeof data === "object" && REFUSAL in data) {
      return new Response(JSON.stringify({ ok: false, error: (data as Record<symbol, unknown>)[REFUSAL] }), { status: 422 });
    }
    if (ArrayBuffer.isView(data)) return new Response(new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength), { status: 200 });
    return new Response(JSON.stringify(data === undefined ? { ok: false, error: { code: "NOT_FOUND", message: "no" } } : { ok: true, data }), {
      status: data === undefined ? 404 : 200,
    });
  }) as unknown as typeof fetch;
  return { api: new Api("k", fetcher), calls };
}

/** A live feed the test pushes events into (what the gateway's WebSocket would deliver). */
export function fakeLive() {
  const listeners = new Set<(e: PushedEvent) => void>();
  const live = { on: (f: (e: PushedEvent) => void) => (listeners.add(f), () => listeners.delete(f)) } as unknown as Live;
  const push = (event: string, data: unknown) =>
    act(() => listeners.forEach((f) => f({ event, subject: `tgm.x.evt.${event}.v1`, data, timestamp: new Date().toISOString() })));
  return { live, push };
}

export function mount(ui: ReactNode, role: Role, replies: Record<string, unknown>, live: Live | null = null) {
  const gw = fakeGateway(replies);
  render(
    <I18nContext.Provider value={{ lang: "en", t: translator("en"), time: (i) => formatTime("en", i) }}>
      <SessionContext.Provider value={makeSession(gw.api, live, role)}>{ui}</SessionContext.Provider>
    </I18nContext.Provider>,
  );
  return gw;
}
