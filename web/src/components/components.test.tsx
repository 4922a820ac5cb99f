import { describe, expect, it, vi } from "vitest";
import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Expiry } from "./time";
import { StateBadge } from "./StateBadge";
import { Pager } from "./Pager";
import { ErrorAlert } from "./states";
import { Field } from "./Field";
import { CertificateState } from "../gen/certctl/inventory/v1/inventory_pb";
import { firstPage, pushNext } from "../lib/pageStack";

const now = new Date("2026-06-01T12:00:00Z");
const days = (n: number) => new Date(now.getTime() + n * 86_400_000);

describe("<Expiry>", () => {
  it("shows relative time, colour level and the exact time on hover", () => {
    render(<Expiry at={days(6.5)} now={now} />);
    const el = screen.getByText("in 6 days");
    expect(el.className).toContain("critical");
    expect(el.getAttribute("title")).toContain("2026-06-08T00:00:00.000Z");
    expect(el.getAttribute("datetime")).toBe("2026-06-08T00:00:00.000Z");
  });
  it("is amber under 30 days and says expired in the past", () => {
    const { rerender } = render(<Expiry at={days(20)} now={now} />);
    expect(screen.getByText("in 20 days").className).toContain("warning");
    rerender(<Expiry at={days(-2)} now={now} />);
    expect(screen.getByText("expired 2 days ago").className).toContain("expired");
  });
  it("accepts converted protobuf timestamps", () => {
    const ts = timestampFromDate(days(45));
    expect(ts.seconds).toBeTypeOf("bigint");
  });
});

describe("<StateBadge>", () => {
  it("shows the API state word with an icon", () => {
    const { container } = render(<StateBadge state={CertificateState.EXPIRING} />);
    expect(screen.getByText("Expiring")).toBeTruthy();
    expect(container.querySelector("svg")).toBeTruthy();
    expect(container.querySelector(".badge.warn")).toBeTruthy();
  });
});

describe("<Pager>", () => {
  it("disables Previous on page 1 and Next without a token", async () => {
    const onNext = vi.fn();
    const onPrevious = vi.fn();
    const { rerender } = render(<Pager stack={firstPage} nextPageToken="abc" shown={50} onNext={onNext} onPrevious={onPrevious} />);
    expect((screen.getByRole("button", { name: /Previous/ }) as HTMLButtonElement).disabled).toBe(true);
    await userEvent.click(screen.getByRole("button", { name: /Next/ }));
    expect(onNext).toHaveBeenCalledOnce();
    rerender(<Pager stack={pushNext(firstPage, "abc")} nextPageToken="" shown={3} onNext={onNext} onPrevious={onPrevious} />);
    expect(screen.getByText(/Page 2/)).toBeTruthy();
    expect((screen.getByRole("button", { name: /Next/ }) as HTMLButtonElement).disabled).toBe(true);
    await userEvent.click(screen.getByRole("button", { name: /Previous/ }));
    expect(onPrevious).toHaveBeenCalledOnce();
  });
});

describe("errors", () => {
  it("ErrorAlert shows the API message and named fields", () => {
    render(<ErrorAlert error={{ code: "invalid argument", message: "certificate_id is taken", violations: [{ field: "certificate_id", description: "already exists" }] }} />);
    const alert = screen.getByRole("alert");
    expect(alert.textContent).toContain("certificate_id is taken");
    expect(alert.textContent).toContain("already exists");
    expect(alert.textContent).not.toMatch(/something went wrong/i);
  });
  it("Field labels its input and wires the error to it", () => {
    render(<Field label="Common name" error="must not be empty">{(p) => <input {...p} />}</Field>);
    const input = screen.getByLabelText("Common name");
    expect(input.getAttribute("aria-invalid")).toBe("true");
    const describedBy = input.getAttribute("aria-describedby")!;
    expect(document.getElementById(describedBy)?.textContent).toBe("must not be empty");
  });
});
