// The gateway's public API, and nothing else: POST /api/v1/commands/<name> and GET /api/v1/keys.
// Every URL the console uses is built here or in live.ts (a test greps the bundle for others).
import type { CommandName, Commands, Role } from "./types.gen";

export const API = "/api/v1";

/** The gateway's error envelope `{ok: false, error: {code, message, details?, retry_after?}}`. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export type Request<C extends CommandName> = Commands[C]["request"];
export type Response<C extends CommandName> = Commands[C]["response"];

export class Api {
  constructor(
    readonly key: string,
    private readonly fetcher: typeof fetch = (...a) => fetch(...a),
  ) {}

  private async send(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    let res: globalThis.Response;
    try {
      res = await this.fetcher(`${API}${path}`, {
        method,
        headers: { Authorization: `Bearer ${this.key}`, "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError("NETWORK", String(e), 0);
    }
    let json: any = null;
    try {
      json = await res.json();
    } catch {
      throw new ApiError("BAD_REPLY", `HTTP ${res.status}: not JSON`, res.status);
    }
    return { status: res.status, json };
  }

  /** Run one command; its data, or an ApiError carrying the envelope's code and message. */
  async call<C extends CommandName>(command: C, payload: Partial<Request<C>> = {}): Promise<Response<C>> {
    const { status, json } = await this.send("POST", `/commands/${command}`, payload);
    if (json?.ok === true) return json.data as Response<C>;
    const err = json?.error ?? {};
    throw new ApiError(err.code ?? "UNKNOWN", err.message ?? `HTTP ${status}`, status, err.details);
  }

  /**
   * The key's role. The gateway has no "who am I" route (a gap for the API hardening issue), so it
   * is learnt without side effects: GET /keys answers admins only; an operator command with a
   * payload its contract refuses (`pause-queue` with an unknown scope, so it never runs) is
   * refused FORBIDDEN for a viewer and VALIDATION_ERROR for an operator, since the gateway checks
   * the role before it validates the payload against the contract.
   */
  async role(): Promise<Role> {
    const keys = await this.send("GET", "/keys");
    if (keys.status === 401) throw new ApiError("UNAUTHORIZED", keys.json?.error?.message ?? "invalid key", 401);
    if (keys.status === 200) return "admin";
    const probe = await this.send("POST", "/commands/pause-queue", { scope: "role-probe" });
    if (probe.status === 403) return "viewer";
    if (probe.status === 422) return "operator";
    throw new ApiError(probe.json?.error?.code ?? "UNKNOWN", probe.json?.error?.message ?? "", probe.status);
  }
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** Whether `role` may run a command whose least role is `least`. */
export function allows(role: Role, least: Role): boolean {
  return RANK[role] >= RANK[least];
}
