import { useEffect } from "react";

/** Sets the document title ("Certificates · certctl") so tabs and history are readable. */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = title ? `${title} · certctl` : "certctl";
  }, [title]);
}
