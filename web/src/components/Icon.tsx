// A few inline SVG icons (16px, currentColor) so status is never colour alone.
import type { ReactElement } from "react";

const paths: Record<string, ReactElement> = {
  check: <path d="M3.5 8.5l3 3 6-7" />,
  clock: (
    <>
      <circle cx="8" cy="8" r="6" />
      <path d="M8 4.5V8l2.5 1.5" />
    </>
  ),
  alert: (
    <>
      <path d="M8 2l6.5 11.5h-13z" />
      <path d="M8 6.5v3M8 11.5v.5" />
    </>
  ),
  x: (
    <>
      <circle cx="8" cy="8" r="6" />
      <path d="M5.8 5.8l4.4 4.4M10.2 5.8l-4.4 4.4" />
    </>
  ),
  ban: (
    <>
      <circle cx="8" cy="8" r="6" />
      <path d="M3.8 12.2l8.4-8.4" />
    </>
  ),
  question: (
    <>
      <circle cx="8" cy="8" r="6" />
      <path d="M6.3 6.3a1.8 1.8 0 113 1.4c-.7.4-1.3.8-1.3 1.6M8 11.3v.4" />
    </>
  ),
  copy: (
    <>
      <rect x="5.5" y="5.5" width="8" height="8" rx="1.5" />
      <path d="M10.5 3.5v-.5a1 1 0 00-1-1h-6a1 1 0 00-1 1v6a1 1 0 001 1h.5" />
    </>
  ),
  download: <path d="M8 2.5v8M4.5 7.5L8 11l3.5-3.5M3 13.5h10" />,
  sun: (
    <>
      <circle cx="8" cy="8" r="3" />
      <path d="M8 1v1.5M8 13.5V15M1 8h1.5M13.5 8H15M3 3l1 1M12 12l1 1M3 13l1-1M12 4l1-1" />
    </>
  ),
  moon: <path d="M13 9.5A5.5 5.5 0 016.5 3a5.5 5.5 0 106.5 6.5z" />,
  shield: <path d="M8 1.5l5.5 2v4c0 3.5-2.5 6-5.5 7-3-1-5.5-3.5-5.5-7v-4z" />,
  dashboard: (
    <>
      <rect x="2" y="2" width="5" height="6" rx="1" />
      <rect x="9" y="2" width="5" height="3.5" rx="1" />
      <rect x="2" y="10" width="5" height="4" rx="1" />
      <rect x="9" y="7.5" width="5" height="6.5" rx="1" />
    </>
  ),
  cert: (
    <>
      <rect x="2" y="2.5" width="12" height="8.5" rx="1" />
      <path d="M5 5.5h6M5 8h3.5M9.5 11v3.5l1.5-1 1.5 1V11" />
    </>
  ),
  user: (
    <>
      <circle cx="8" cy="5.5" r="2.8" />
      <path d="M2.5 14c.6-3 2.8-4.5 5.5-4.5s4.9 1.5 5.5 4.5" />
    </>
  ),
  users: (
    <>
      <circle cx="6" cy="6" r="2.5" />
      <path d="M1.5 13.5c.5-2.5 2.2-3.8 4.5-3.8s4 1.3 4.5 3.8M10.5 3.7a2.5 2.5 0 010 4.6M12 9.9c1.3.5 2.2 1.7 2.5 3.6" />
    </>
  ),
  server: (
    <>
      <rect x="2" y="2.5" width="12" height="4.5" rx="1" />
      <rect x="2" y="9" width="12" height="4.5" rx="1" />
      <path d="M4.5 4.75h.01M4.5 11.25h.01" />
    </>
  ),
  agent: (
    <>
      <rect x="3" y="4" width="10" height="8" rx="2" />
      <path d="M8 4V2M6 8h.01M10 8h.01M1.5 7.5v2M14.5 7.5v2" />
    </>
  ),
  policy: (
    <>
      <path d="M4 1.5h5.5L12.5 4.5v10h-8.5z" />
      <path d="M6.5 8l1.3 1.3L10 7" />
    </>
  ),
  audit: (
    <>
      <path d="M3 2.5h10v11H3z" />
      <path d="M5.5 5.5h5M5.5 8h5M5.5 10.5h3" />
    </>
  ),
  plus: <path d="M8 3v10M3 8h10" />,
  trash: <path d="M3 4.5h10M6.5 4.5V3h3v1.5M4.5 4.5l.7 9h5.6l.7-9" />,
  edit: <path d="M10.5 2.5l3 3-8 8H2.5v-3z" />,
  refresh: <path d="M13 8a5 5 0 11-1.5-3.55M13 2.5v3h-3" />,
  list: <path d="M5.5 4h8M5.5 8h8M5.5 12h8M2.5 4h.01M2.5 8h.01M2.5 12h.01" />,
  key: (
    <>
      <circle cx="5" cy="10.5" r="2.8" />
      <path d="M7 8.5l6-6M11 4.5l1.5 1.5M9.3 6.2l1.2 1.2" />
    </>
  ),
  sliders: (
    <>
      <path d="M2.5 4h11M2.5 8h11M2.5 12h11" />
      <circle cx="5.5" cy="4" r="1.5" fill="var(--bg-raised)" />
      <circle cx="10.5" cy="8" r="1.5" fill="var(--bg-raised)" />
      <circle cx="7" cy="12" r="1.5" fill="var(--bg-raised)" />
    </>
  ),
  link: <path d="M6.5 9.5l3-3M7 4.5l1-1a2.8 2.8 0 014 4l-1 1M9 11.5l-1 1a2.8 2.8 0 01-4-4l1-1" />,
  dot: <circle cx="8" cy="8" r="3.5" fill="currentColor" />,
  search: (
    <>
      <circle cx="7" cy="7" r="4.5" />
      <path d="M10.3 10.3l3.7 3.7" />
    </>
  ),
};

export type IconName = keyof typeof paths;

export function Icon({ name, size = 14, title }: { name: IconName; size?: number; title?: string }) {
  return (
    <svg
      width={size}
      height={size}
      viewBox="0 0 16 16"
      fill="none"
      stroke="currentColor"
      strokeWidth="1.5"
      strokeLinecap="round"
      strokeLinejoin="round"
      aria-hidden={title ? undefined : true}
      role={title ? "img" : undefined}
      aria-label={title}
      focusable="false"
    >
      {paths[name]}
    </svg>
  );
}
