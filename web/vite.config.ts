import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// `npm run dev` proxies the API to a running `certctl server`.
const api = process.env.CERTCTL_API ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      // gRPC-web: /certctl.inventory.v1.InventoryService/..., /certctl.audit.v1.AuditService/...
      "/certctl.": { target: api, changeOrigin: true },
      "/api": { target: api, changeOrigin: true },
      "/readyz": { target: api, changeOrigin: true },
    },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test/setup.ts"],
  },
});
