import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

/** proto/ at the package root; this file runs as dist/src/csi/csiProto.js. */
export const PROTO_DIR = join(__dirname, '../../../proto');
export const CSI_PROTO_PATH = join(PROTO_DIR, 'csi.proto');

/**
 * How messages look in JavaScript: snake_case field names as on the wire, enums as their
 * names, 64-bit integers as numbers, oneofs named, defaults filled in (an absent string is '').
 */
export const CSI_LOADER_OPTIONS = { keepCase: true, enums: String, longs: Number, defaults: true, oneofs: true } as const;

export interface CsiServices {
  Identity: grpc.ServiceDefinition;
  Node: grpc.ServiceDefinition;
  Controller: grpc.ServiceDefinition;
}

/** A file of proto/, loaded at run time, as grpc-js service constructors by package path. */
export function loadProto<T>(file: string): T {
  return grpc.loadPackageDefinition(loadSync(join(PROTO_DIR, file), CSI_LOADER_OPTIONS)) as unknown as T;
}

/** The CSI v1 service definitions, from proto/csi.proto. */
export function loadCsiServices(): CsiServices {
  const v1 = loadProto<{ csi: { v1: Record<keyof CsiServices, grpc.ServiceClientConstructor> } }>('csi.proto').csi.v1;
  return { Identity: v1.Identity.service, Node: v1.Node.service, Controller: v1.Controller.service };
}
