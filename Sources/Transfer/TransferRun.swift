import AsyncHTTPClient
import Foundation
import GenWorkerCore
import Logging
import NIOCore

/// Carries out a ``TransferPlan`` in a `genworker transfer` process: the inputs to fetch, or
/// the video to upload. Returns the report; throws a ``TransferError`` whose code the CLI
/// turns into the exit status the worker reads (``TransferExit``).
public struct TransferRun: Sendable {
    let plan: TransferPlan
    let environment: [String: String]
    let logger: Logger
    /// When fetching stops (`inputs.fetch_timeout_s`): the job's own timeout bounds the whole step too.
    let fetchDeadline: NIODeadline

    public init(plan: TransferPlan, environment: [String: String], fetchTimeoutSeconds: Double, logger: Logger) {
        self.plan = plan
        self.environment = environment
        self.logger = logger
        fetchDeadline = .now() + .milliseconds(Int64(fetchTimeoutSeconds * 1000))
    }

    public func run() async throws(TransferError) -> TransferReport {
        var report = TransferReport()
        let http = GuardedHTTP(egress: EgressGuard(plan.egress))
        for fetch in plan.fetches {
            let bytes: Int64
            do {
                bytes = try await self.fetch(fetch, http: http)
            } catch {
                unlink(fetch.destination)
                throw TransferError(error.code, "params.\(fetch.param): \(error.message)")
            }
            report.fetched[fetch.param] = bytes
        }
        if let upload = plan.upload {
            switch upload.target {
            case .store(let key):
                report.stored = try await objectStore().upload(file: upload.file, key: key)
            case .url(let destination):
                report.stored = try await PresignedUpload(http: http, attempts: plan.attempts, logger: logger)
                    .put(file: upload.file, to: destination)
            }
        }
        return report
    }

    private func objectStore() throws(TransferError) -> ObjectStore {
        guard let store = plan.store else { throw TransferError(.credentials, "no object store is configured (storage.endpoint)") }
        var environment = environment
        if !store.profile.isEmpty { environment["AWS_PROFILE"] = store.profile }
        guard let credentials = AWSCredentials.resolve(environment: environment, readFile: { try? String(contentsOfFile: $0, encoding: .utf8) })
        else {
            throw TransferError(
                .credentials,
                "no credentials for \(store.endpoint): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a credentials file (AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials)"
            )
        }
        return ObjectStore(store, credentials: credentials, logger: logger)
    }

    private func fetch(_ fetch: TransferPlan.Fetch, http: GuardedHTTP) async throws(TransferError) -> Int64 {
        let shown = fetch.source.redacted
        let bytes: Int64
        switch fetch.source {
        case .s3(let bucket, let key):
            bytes = try await objectStore().download(
                bucket: bucket, key: key, to: fetch.destination, maxBytes: plan.maxInputBytes, deadline: fetchDeadline)
        case .url(let url):
            bytes = try await withRetries(attempts: plan.attempts, what: "fetch \(shown)", logger: logger) { () async throws(TransferError) in
                try await http.execute(method: .GET, url: url, deadline: fetchDeadline) { response async throws(TransferError) in
                    guard response.status == .ok else {
                        let code: TransferError.Code = response.status == .notFound ? .notFound : .status(Int(response.status.code))
                        throw TransferError(code, "\(shown): HTTP \(response.status.code)")
                    }
                    return try await ResponseFile.write(response, to: fetch.destination, maxBytes: plan.maxInputBytes, shown: shown)
                }
            }
        }
        try MediaCheck.check(file: fetch.destination, media: fetch.media, shown: shown)
        logger.info("fetched \(shown): \(bytes) bytes")
        return bytes
    }
}
