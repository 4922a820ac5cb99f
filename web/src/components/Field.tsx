import { useId, type ReactNode } from "react";

/**
 * A labelled form control. `children` receives the id and the aria attributes
 * to spread on the input so the label, hint and error are all wired up.
 */
export function Field({
  label,
  hint,
  error,
  required,
  className,
  children,
}: {
  label: string;
  hint?: ReactNode;
  error?: string;
  required?: boolean;
  className?: string;
  children: (props: { id: string; "aria-invalid"?: boolean; "aria-describedby"?: string; required?: boolean }) => ReactNode;
}) {
  const id = useId();
  const hintId = `${id}-hint`;
  const errId = `${id}-err`;
  const describedBy = [error ? errId : "", hint ? hintId : ""].filter(Boolean).join(" ") || undefined;
  return (
    <div className={`field${error ? " has-error" : ""}${className ? ` ${className}` : ""}`}>
      <label htmlFor={id} className={required ? "required" : undefined}>
        {label}
      </label>
      {children({ id, "aria-invalid": error ? true : undefined, "aria-describedby": describedBy, required })}
      {error && (
        <span className="error-text" id={errId}>
          {error}
        </span>
      )}
      {hint && !error && (
        <span className="hint" id={hintId}>
          {hint}
        </span>
      )}
    </div>
  );
}
