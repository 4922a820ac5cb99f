import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter } from "react-router";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { ConnectError, Code } from "@connectrpc/connect";
import { App } from "./App";
import { ToastProvider } from "./components/Toasts";
import "./styles.css";

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 15_000,
      // Retry transient failures only; a NotFound or InvalidArgument will not change.
      retry: (count, err) =>
        count < 2 && err instanceof ConnectError && [Code.Unavailable, Code.DeadlineExceeded, Code.Unknown].includes(err.code),
    },
  },
});

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <BrowserRouter>
        <ToastProvider>
          <App />
        </ToastProvider>
      </BrowserRouter>
    </QueryClientProvider>
  </StrictMode>,
);
