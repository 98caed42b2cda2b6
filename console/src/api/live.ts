// Live events over the gateway's WebSocket (/api/v1/ws): one connection per signed-in console,
// subscribed to the event subjects of the services the screens show; screens register the event
// names that change what they show and refetch (debounced) when one arrives.
//
// Authentication: browsers cannot set headers on a WebSocket, so the socket opens with no key in
// its URL and sends the key as its first frame, `{"action": "auth", "token": <key>}` (the gateway
// serves nothing before it and closes 4401 on a wrong key or after 5 s of silence); once the
// gateway answers `auth-result` the console subscribes.
import { API } from "./client";

export interface PushedEvent {
  event: string;
  subject: string;
  data: any;
  timestamp: string;
}

export const SUBJECTS = [
  "tgm.tg-session.evt.>", "tgm.campaign.evt.>", "tgm.ai.evt.>", "tgm.analytics.evt.>", "tgm.tailchat.evt.>",
  "tgm.gateway.evt.>",
];

type Listener = (e: PushedEvent) => void;
export type LiveState = "connecting" | "open" | "closed";

export class Live {
  private ws: WebSocket | null = null;
  private listeners = new Set<Listener>();
  private stateListeners = new Set<(s: LiveState) => void>();
  private stopped = false;
  private retry = 500;
  state: LiveState = "connecting";

  constructor(
    private readonly key: string,
    private readonly make: (url: string) => WebSocket = (u) => new WebSocket(u),
  ) {}

  start(): this {
    this.stopped = false;
    this.connect();
    return this;
  }

  private setState(s: LiveState) {
    this.state = s;
    this.stateListeners.forEach((f) => f(s));
  }

  private connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = this.make(`${scheme}://${location.host}${API}/ws`);
    this.ws = ws;
    this.setState("connecting");
    ws.onopen = () => {
      this.retry = 500;
      ws.send(JSON.stringify({ action: "auth", token: this.key, requestId: "auth" }));
    };
    ws.onmessage = (m) => {
      let msg: any;
      try {
        msg = JSON.parse(String(m.data));
      } catch {
        return;
      }
      if (msg?.event === "auth-result") {
        ws.send(JSON.stringify({ action: "subscribe", subjects: SUBJECTS, requestId: "live" }));
      } else if (msg?.event === "subscribe-result") {
        // Subscribed: anything missed while (re)connecting is fetched again by every screen.
        this.setState("open");
        this.listeners.forEach((f) => f({ event: "*", subject: "", data: null, timestamp: "" }));
      } else if (typeof msg?.subject === "string" && typeof msg?.event === "string") {
        this.listeners.forEach((f) => f(msg as PushedEvent));
      }
    };
    ws.onclose = () => {
      this.setState("closed");
      if (this.stopped) return;
      setTimeout(() => this.connect(), this.retry);
      this.retry = Math.min(this.retry * 2, 10_000);
    };
  }

  on(f: Listener): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  onState(f: (s: LiveState) => void): () => void {
    this.stateListeners.add(f);
    return () => this.stateListeners.delete(f);
  }

  stop() {
    this.stopped = true;
    this.ws?.close();
  }
}
