import { useEffect, useMemo, useState } from "react";
import { Api, ApiError } from "./api/client";
import { Live, type LiveState } from "./api/live";
import type { Role } from "./api/types.gen";
import { ErrorLine } from "./components";
import { formatTime, I18nContext, LANGS, saveLang, savedLang, translator, useI18n, type Lang } from "./i18n";
import type { MessageKey } from "./i18n/en";
import { Analytics } from "./screens/Analytics";
import { Channels } from "./screens/Channels";
import { Fleet } from "./screens/Fleet";
import { Knowledge } from "./screens/Knowledge";
import { Leads } from "./screens/Leads";
import { Queue } from "./screens/Queue";
import { Rules } from "./screens/Rules";
import { System } from "./screens/System";
import { forgetKey, makeSession, SessionContext, storedKey, storeKey, type Session } from "./session";

const SCREENS = [
  { id: "fleet", label: "nav.fleet", View: Fleet },
  { id: "channels", label: "nav.channels", View: Channels },
  { id: "queue", label: "nav.queue", View: Queue },
  { id: "rules", label: "nav.rules", View: Rules },
  { id: "leads", label: "nav.leads", View: Leads },
  { id: "knowledge", label: "nav.knowledge", View: Knowledge },
  { id: "analytics", label: "nav.analytics", View: Analytics },
  { id: "system", label: "nav.system", View: System },
] as const;
type ScreenId = (typeof SCREENS)[number]["id"];

function screenFromHash(): ScreenId {
  const id = location.hash.replace(/^#\/?/, "");
  return SCREENS.some((s) => s.id === id) ? (id as ScreenId) : "fleet";
}

export function App() {
  const [lang, setLang] = useState<Lang>(savedLang);
  const i18n = useMemo(() => ({ lang, t: translator(lang), time: (iso: string | null | undefined) => formatTime(lang, iso) }), [lang]);
  const [auth, setAuth] = useState<{ key: string; role: Role } | null>(null);
  const [checking, setChecking] = useState(() => !!storedKey());
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    document.documentElement.lang = lang;
    saveLang(lang);
  }, [lang]);

  const signIn = async (key: string) => {
    setChecking(true);
    setError(null);
    try {
      const role = await new Api(key).role();
      storeKey(key);
      setAuth({ key, role });
    } catch (e) {
      forgetKey();
      setError(e instanceof ApiError ? e : new ApiError("UNKNOWN", String(e), 0));
    } finally {
      setChecking(false);
    }
  };

  useEffect(() => {
    const key = storedKey();
    if (key) void signIn(key);
  }, []);

  const signOut = () => {
    forgetKey();
    setAuth(null);
  };

  return (
    <I18nContext.Provider value={i18n}>
      {auth ? (
        <Console auth={auth} onSignOut={signOut} lang={lang} setLang={setLang} />
      ) : (
        <SignIn busy={checking} error={error} onSubmit={signIn} lang={lang} setLang={setLang} />
      )}
    </I18nContext.Provider>
  );
}

function LangSwitch({ lang, setLang }: { lang: Lang; setLang: (l: Lang) => void }) {
  const { t } = useI18n();
  return (
    <label className="lang">
      {t("app.language")}
      <select data-testid="lang" value={lang} onChange={(e) => setLang(e.target.value as Lang)}>
        {LANGS.map((l) => <option key={l.id} value={l.id}>{l.label}</option>)}
      </select>
    </label>
  );
}

function SignIn(props: { busy: boolean; error: unknown; onSubmit: (key: string) => void; lang: Lang; setLang: (l: Lang) => void }) {
  const { t } = useI18n();
  const [key, setKey] = useState("");
  return (
    <main className="signin">
      <h1>{t("app.title")}</h1>
      <form onSubmit={(e) => (e.preventDefault(), props.onSubmit(key.trim()))}>
        <h2>{t("signIn.title")}</h2>
        <label>
          {t("signIn.key")}
          <input name="key" type="password" autoComplete="off" autoFocus value={key} onChange={(e) => setKey(e.target.value)} required />
        </label>
        <p className="muted">{t("signIn.hint")}</p>
        <button type="submit" disabled={props.busy || !key.trim()}>{props.busy ? t("signIn.busy") : t("signIn.submit")}</button>
        <ErrorLine error={props.error} />
      </form>
      <LangSwitch lang={props.lang} setLang={props.setLang} />
    </main>
  );
}

function Console(props: { auth: { key: string; role: Role }; onSignOut: () => void; lang: Lang; setLang: (l: Lang) => void }) {
  const { t } = useI18n();
  const { key, role } = props.auth;
  const [screen, setScreen] = useState<ScreenId>(screenFromHash);
  const [liveState, setLiveState] = useState<LiveState>("connecting");
  const [session, setSession] = useState<Session | null>(null);

  useEffect(() => {
    const live = new Live(key).start();
    const off = live.onState(setLiveState);
    setSession(makeSession(new Api(key), live, role));
    return () => {
      off();
      live.stop();
    };
  }, [key, role]);

  useEffect(() => {
    const f = () => setScreen(screenFromHash());
    window.addEventListener("hashchange", f);
    return () => window.removeEventListener("hashchange", f);
  }, []);

  if (!session) return null;
  const View = SCREENS.find((s) => s.id === screen)!.View;
  return (
    <SessionContext.Provider value={session}>
      <header className="top">
        <strong>{t("app.title")}</strong>
        <nav aria-label="main">
          {SCREENS.map((s) => (
            <a key={s.id} href={`#/${s.id}`} aria-current={s.id === screen ? "page" : undefined}>
              {t(s.label as MessageKey)}
            </a>
          ))}
        </nav>
        <span className={`live live-${liveState}`} data-testid="live" data-state={liveState}>
          {t(`app.live.${liveState}` as MessageKey)}
        </span>
        <span className="muted" data-testid="role">{t("app.role", { role })}</span>
        <LangSwitch lang={props.lang} setLang={props.setLang} />
        <button type="button" className="secondary" onClick={props.onSignOut}>{t("app.signOut")}</button>
      </header>
      <main>
        <View />
      </main>
    </SessionContext.Provider>
  );
}
