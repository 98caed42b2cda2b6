// The gateway's public API, and nothing else: POST /api/v1/commands/<name>, GET /api/v1/keys/me,
// the admin's /api/v1/keys routes and GET /api/v1/exports/<objectName> (a large export's file).
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

export interface ApiKeyView {
  id: string;
  name: string;
  role: Role;
  createdAt: string | null;
  revoked: boolean;
}

/** A reply's `data`, or the ApiError its envelope names. */
function unwrap(reply: { status: number; json: any }): any {
  const { status, json } = reply;
  if (json?.ok === true) return json.data;
  const err = json?.error ?? {};
  throw new ApiError(err.code ?? "UNKNOWN", err.message ?? `HTTP ${status}`, status, err.details);
}

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
    return unwrap(await this.send("POST", `/commands/${command}`, payload));
  }

  /** Who the key is: `GET /api/v1/keys/me` answers any valid key with its id, name and role. */
  async me(): Promise<{ id: string; name: string; role: Role }> {
    return unwrap(await this.send("GET", "/keys/me"));
  }

  /** The admin's key routes: list, create (the secret is in this reply only), revoke. */
  async keys(): Promise<ApiKeyView[]> {
    return (await unwrap(await this.send("GET", "/keys"))).items;
  }

  async createKey(name: string, role: Role): Promise<ApiKeyView & { key: string }> {
    return unwrap(await this.send("POST", "/keys", { name, role }));
  }

  async revokeKey(id: string): Promise<void> {
    await unwrap(await this.send("DELETE", `/keys/${encodeURIComponent(id)}`));
  }

  /** A large export's file (`ExportFile.objectName`: `<least role>/<id>/<filename>`), downloaded with
   * this key from `GET /api/v1/exports/<objectName>` (its bytes); an error reply is thrown as its ApiError. */
  async exportFile(objectName: string): Promise<ArrayBuffer> {
    const path = objectName.split("/").map(encodeURIComponent).join("/");
    let res: globalThis.Response;
    try {
      res = await this.fetcher(`${API}/exports/${path}`, { method: "GET", headers: { Authorization: `Bearer ${this.key}` } });
    } catch (e) {
      throw new ApiError("NETWORK", String(e), 0);
    }
    if (res.ok) return await res.arrayBuffer();
    let json: any = null;
    try {
      json = await res.json();
    } catch {
      // not the envelope: unwrap names the status
    }
    return unwrap({ status: res.status, json });
  }

  /** The key's role (from `me()`). */
  async role(): Promise<Role> {
    return (await this.me()).role;
  }
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** Whether `role` may run a command whose least role is `least`. */
export function allows(role: Role, least: Role): boolean {
  return RANK[role] >= RANK[least];
}
