import { hasPrevious, pageNumber, type PageStack } from "../lib/pageStack";

export function Pager({
  stack,
  nextPageToken,
  shown,
  onPrevious,
  onNext,
  fetching,
}: {
  stack: PageStack;
  nextPageToken: string | undefined;
  shown: number;
  onPrevious: () => void;
  onNext: () => void;
  fetching?: boolean;
}) {
  return (
    <nav className="pager" aria-label="Pagination">
      <span>
        Page {pageNumber(stack)} · {shown} shown
      </span>
      {fetching && <span className="spinner" aria-label="Refreshing" />}
      <span className="spacer" />
      <button type="button" className="btn small" onClick={onPrevious} disabled={!hasPrevious(stack)}>
        ← Previous
      </button>
      <button type="button" className="btn small" onClick={onNext} disabled={!nextPageToken}>
        Next →
      </button>
    </nav>
  );
}
