// SPDX-License-Identifier: GPL-2.0-only
// The director daemon: runDaemon() (what `xvs daemon` runs), the Daemon itself, its control-socket
// protocol and client, and the pieces it is made of (health-check mapping, effective model, sweeper,
// metrics).
export { runDaemon, type RunDaemonOptions } from './run'
export { Daemon, DaemonError, xvsVersion, type DaemonOptions, type DaemonStatus, type HealthView, type ReloadReport } from './daemon'
export { BpfHost, type DataplaneHost, type DataplaneInfo, type HostLoadInfo, type HostLoadRequest, type KernelView } from './host'
export { DaemonClient, DaemonRequestError, DaemonUnreachableError, callDaemon, remoteError, socketPath, type ClientOptions } from './client'
export { ControlServer, ControlError, socketAnswers, type Handlers } from './control'
export {
  DEFAULT_SOCKET, MAX_LINE, METHODS, PROTOCOL_VERSION, ProtocolError, parseRequest, toWire,
  type Method, type MethodParams, type Request, type Response, type WireError,
} from './protocol'
export { checkPolicy, checkSpec, healthTargets, targetKey, type HealthTarget } from './checks'
export { effectiveModel, type EffectiveResult, type ServerState, type ServiceOutcome } from './effective'
export { ConnSweeper, connExpired, connTimeoutS, type ConnTable, type SweepReport } from './sweeper'
export { Exposition, RateEstimator, renderMetrics, type MetricsSnapshot } from './metrics'
export { DEFAULT_METRICS_ADDRESS, MetricsServer, parseListenAddress } from './http'
