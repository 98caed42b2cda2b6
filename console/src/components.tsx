import { useState, type ReactNode } from "react";
import { ApiError } from "./api/client";
import { useI18n } from "./i18n";

export function ErrorLine({ error }: { error: unknown }) {
  const { t } = useI18n();
  if (!error) return null;
  const e = error instanceof ApiError ? error : new ApiError("UNKNOWN", String(error), 0);
  return (
    <p className="error" role="alert">
      {t("common.error", { code: e.code, message: e.message })}
    </p>
  );
}

export function Panel({ title, children, id }: { title: string; children: ReactNode; id?: string }) {
  return (
    <section className="panel" aria-labelledby={id ? `${id}-h` : undefined} data-testid={id}>
      <h2 id={id ? `${id}-h` : undefined}>{title}</h2>
      {children}
    </section>
  );
}

/** Runs an async action with a busy flag and the error it ended with. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = async <T,>(fn: () => Promise<T>): Promise<T | undefined> => {
    setBusy(true);
    setError(null);
    try {
      return await fn();
    } catch (e) {
      setError(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run, setError };
}

/** A button that runs `onConfirm` only after the browser's confirm dialog says yes (destructive
 * commands: the call then carries `confirm: true` where the contract asks for it). */
export function ConfirmButton(props: { label: string; question: string; onConfirm: () => void; disabled?: boolean; className?: string }) {
  return (
    <button type="button" className={props.className ?? "danger"} disabled={props.disabled} onClick={() => window.confirm(props.question) && props.onConfirm()}>
      {props.label}
    </button>
  );
}
