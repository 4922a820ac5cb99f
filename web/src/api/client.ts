// gRPC-web clients generated from proto/ (see src/gen); the gateway serves the
// GUI and the API on the same origin.
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { InventoryService } from "../gen/certctl/inventory/v1/inventory_pb";
import { AuditService } from "../gen/certctl/audit/v1/audit_pb";
import { IssuanceService } from "../gen/certctl/issuance/v1/issuance_pb";
import { SchedulerService } from "../gen/certctl/scheduler/v1/scheduler_pb";

const transport = createGrpcWebTransport({
  baseUrl: typeof window === "undefined" ? "http://localhost" : window.location.origin,
});

export const inventory: Client<typeof InventoryService> = createClient(InventoryService, transport);
export const audit: Client<typeof AuditService> = createClient(AuditService, transport);
export const issuance: Client<typeof IssuanceService> = createClient(IssuanceService, transport);
export const scheduler: Client<typeof SchedulerService> = createClient(SchedulerService, transport);
