// The signed-in console: the API client, the live event feed and the key's role. Screens read it
// with useSession(); `can(command)` is what decides whether a write control is shown at all.
import { createContext, useCallback, useContext, useEffect, useRef, useState } from "react";
import { allows, ApiError, type Api, type Response } from "./api/client";
import type { Live, PushedEvent } from "./api/live";
import { COMMAND_ROLES, type CommandName, type Role } from "./api/types.gen";

export interface Session {
  api: Api;
  live: Live | null;
  role: Role;
  can: (command: CommandName) => boolean;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error("useSession outside a signed-in console");
  return s;
}

export function makeSession(api: Api, live: Live | null, role: Role): Session {
  return { api, live, role, can: (c) => allows(role, COMMAND_ROLES[c]) };
}

const KEY = "tgm.key";
export const storedKey = () => sessionStorage.getItem(KEY);
export const storeKey = (key: string) => sessionStorage.setItem(KEY, key);
export const forgetKey = () => sessionStorage.removeItem(KEY);

/** Calls `fn` for each pushed event named in `events` (and, with `resync`, after every (re)subscription). */
function useListener(events: readonly string[], fn: (e: PushedEvent) => void, resync: boolean) {
  const { live } = useSession();
  const ref = useRef(fn);
  ref.current = fn;
  const key = events.join(",");
  useEffect(() => {
    if (!live) return;
    const names = new Set(key.split(","));
    return live.on((e) => {
      if ((resync && e.event === "*") || names.has(e.event)) ref.current(e);
    });
  }, [live, key, resync]);
}

/** Calls `fn` (debounced) whenever one of `events` is pushed, and after every (re)subscription.
 * A steady stream of events (a campaign sending) never holds it back longer than `maxWaitMs`. */
export function useLive(events: readonly string[], fn: (e: PushedEvent) => void, delayMs = 250, maxWaitMs = 1000) {
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const since = useRef(0);
  useEffect(() => () => void (timer.current && clearTimeout(timer.current)), []);
  useListener(events, (e) => {
    const now = Date.now();
    if (timer.current) clearTimeout(timer.current);
    else since.current = now;
    const wait = Math.max(0, Math.min(delayMs, since.current + maxWaitMs - now));
    timer.current = setTimeout(() => {
      timer.current = null;
      fn(e);
    }, wait);
  }, true);
}

/** Calls `fn` for every pushed event named in `events`, each one, as it arrives (a live feed). */
export function useEvents(events: readonly string[], fn: (e: PushedEvent) => void) {
  useListener(events, fn, false);
}

export interface Query<T> {
  data: T | null;
  error: ApiError | null;
  reload: () => void;
}

/** A read command, fetched now, when `payload` changes and when one of `events` arrives. */
export function useCommand<C extends CommandName>(
  command: C,
  payload: object,
  events: readonly string[],
): Query<Response<C>> {
  const { api } = useSession();
  const [data, setData] = useState<Response<C> | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const body = JSON.stringify(payload);
  const seq = useRef(0);
  const reload = useCallback(() => {
    const n = ++seq.current;
    api
      .call(command, JSON.parse(body))
      .then((d) => {
        if (n !== seq.current) return; // a newer fetch is under way
        setData(d);
        setError(null);
      })
      .catch((e: unknown) => {
        if (n === seq.current) setError(e instanceof ApiError ? e : new ApiError("UNKNOWN", String(e), 0));
      });
  }, [api, command, body]);
  useEffect(reload, [reload]);
  useLive(events, reload);
  return { data, error, reload };
}
