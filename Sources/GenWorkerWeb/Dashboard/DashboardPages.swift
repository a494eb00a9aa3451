import Foundation
import GenWorker
import GenWorkerCore
import Mustache

/// Renders the dashboard's pages from a ``FleetView`` with ``DashboardTemplates``.
/// Mustache escapes every value, so ids, prompts and log lines reach the page as text.
struct Pages: Sendable {
    let configuration: WorkerConfiguration
    let view: FleetView
    let library: MustacheLibrary

    init(configuration: WorkerConfiguration, view: FleetView) throws {
        self.configuration = configuration
        self.view = view
        library = try DashboardTemplates.library()
    }

    private func render(_ template: String, _ values: [String: Any]) -> String {
        var values = values
        values["connected"] = view.health.connected
        return library.render(values, withTemplate: template) ?? "template \(template) failed\n"
    }

    private static func time(_ date: Date?) -> String {
        guard let date else { return "" }
        return date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: false).timeSeparator(.colon))
    }

    private func row(_ job: JobSummary) -> [String: Any] {
        var row: [String: Any] = [
            "id": job.id, "task": job.task ?? "", "state": job.state, "ended": job.state == "ended", "cancelling": job.cancelling,
            "percent": job.percent ?? 0, "worker": job.worker ?? "", "submitted": Self.time(job.submittedAt), "prompt": job.prompt ?? "",
        ]
        if let status = job.status { row["status"] = status }
        if let reason = job.reason { row["reason"] = reason }
        if let total = job.total, total > 0 {
            row["total"] = total
            row["step"] = job.step ?? 0
        }
        return row
    }

    func jobs(state: String?, task: String?, worker: String?, text: String?) -> String {
        let jobs = view.jobs(state: state, task: task, worker: worker, text: text)
        return render(
            "jobs",
            [
                "title": "Jobs", "jobs": jobs.map(row), "count": jobs.count, "total": view.health.jobs,
                "states": ["queued", "running", "ended", "completed", "failed", "cancelled"].map { ["name": $0, "selected": $0 == state] },
                "tasks": WanTask.allCases.map { ["name": $0.rawValue, "selected": $0.rawValue == task] },
                "worker": worker ?? "", "q": text ?? "",
            ])
    }

    func job(_ id: String) -> String? {
        guard let (summary, job, params) = view.job(id) else { return nil }
        var values = row(summary)
        values["title"] = id
        values["attempts"] = job.attempts.map {
            [
                "number": $0.number, "worker": $0.worker, "claimed": Self.time($0.claimedAt), "ended": Self.time($0.endedAt),
                "outcome": $0.outcome?.rawValue ?? "running",
            ]
        }
        if let params {
            // A presigned URL's query is its signature: the page shows the URL without it.
            let shown = params.params.mapValues { value -> JSONValue in
                guard case .string(let text) = value, text.hasPrefix("https://") || text.hasPrefix("http://") else { return value }
                return .string(RemoteInput.url(text).redacted)
            }
            values["params"] = (try? String(decoding: ProtocolCoding.encode(shown), as: UTF8.self)) ?? ""
            // The command line the worker runs, built by the worker's own code when the job validates here.
            if let body = try? ProtocolCoding.encode(params),
                let request = try? JobValidator(configuration: configuration).validate(body: body, fallbackID: nil)
            {
                let spec = WanCommand.processSpec(
                    for: request, configuration: configuration,
                    outputPath: (configuration.outputs.dir as NSString).appendingPathComponent("\(id).mp4"), devices: nil, preprocessedInto: nil)
                values["command"] = ([spec.executable] + spec.arguments).map(Self.shellQuoted).joined(separator: " ")
            }
        }
        if let result = job.result {
            values["result"] = [
                "started_at": Self.time(result.startedAt), "ended_at": Self.time(result.endedAt),
                "elapsed_s": result.elapsedSeconds.map { String(format: "%.1f", $0) } ?? "", "message": result.message ?? "",
            ]
            if let tail = result.logTail, !tail.isEmpty { values["logTail"] = tail.joined(separator: "\n") }
            if let uri = result.outputURI { values["outputURI"] = uri }
            // A stored video plays from the store (its presigned or public URL, as the result says).
            if let url = result.outputURL, result.status == .completed { values["video"] = url }
            if let output = result.output {
                values["output"] = output
                if values["video"] == nil, let dir = configuration.dashboard.outputsDir, result.status == .completed,
                    FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent("\(id).mp4"))
                {
                    values["video"] = "/outputs/\(id).mp4"
                }
            }
        }
        return render("job", values)
    }

    func workers() -> String {
        let d = configuration.dashboard
        let workers = view.workers(now: Date(), offlineAfter: d.offlineAfterSeconds, dropAfter: d.dropAfterSeconds)
        return render(
            "workers",
            [
                "title": "Workers", "offline_after": Int(d.offlineAfterSeconds), "drop_after": Int(d.dropAfterSeconds),
                "workers": workers.map {
                    [
                        "name": $0.name, "node": $0.node ?? "", "slots": $0.slots, "busy": $0.busy, "running": $0.running,
                        "seconds_ago": $0.secondsAgo, "online": $0.online, "version": $0.version ?? "",
                    ] as [String: Any]
                },
            ])
    }

    func queues() -> String {
        let health = view.health
        return render(
            "queues",
            [
                "title": "Queues", "queues": view.queues.sorted { $0.key < $1.key }.map { ["name": $0.key, "depth": $0.value] },
                "folded": health.folded, "jobs": health.jobs, "lag": health.lagSeconds.map { String(format: "%.0f", $0) } as Any,
            ])
    }

    func submit() -> String {
        let tasks = configuration.worker.tasks.map { task -> [String: Any] in
            let required = Set(task.requiredParameters)
            let order = ["prompt", "size", "image", "audio", "pose_video", "src_root_path", "video_path", "refer_path", "frame_num", "sample_steps"]
            let names = task.parameters.keys.sorted { (order.firstIndex(of: $0) ?? 99, $0) < (order.firstIndex(of: $1) ?? 99, $1) }
            let fields = names.map { name -> [String: Any] in
                var field: [String: Any] = ["name": name, "required": required.contains(name), "hasChoices": false, "flag": false, "long": false]
                switch task.parameters[name]! {
                case .choice(let choices):
                    field["hasChoices"] = true
                    field["choices"] = choices
                    field["blank"] = name != "size"
                case .flag: field["flag"] = true
                case .text: field["long"] = true
                case .integer(let range): field["hint"] = "\(range.lowerBound)…\(range.upperBound), generate.py's default if empty"
                case .number(let range): field["hint"] = "\(range.lowerBound)…\(range.upperBound), generate.py's default if empty"
                case .frameCount: field["hint"] = "4n+1, 5…1001 (e.g. 81, 121)"
                case .multipleOf4: field["hint"] = "a multiple of 4"
                case .inputFile: field["hint"] = "a file under \(configuration.inputs.roots.joined(separator: " or "))"
                case .inputDirectory: field["hint"] = "a directory under \(configuration.inputs.roots.joined(separator: " or "))"
                }
                return field
            }
            return ["name": task.rawValue, "fields": fields, "defaultTimeout": configuration.jobs.defaultTimeoutSeconds]
        }
        return render("submit", ["title": "Submit", "tasks": tasks])
    }

    func submitted(_ id: String, by user: String) { view.noteRequester(id, user) }

    func submitter(of id: String) -> String? { view.requester(of: id) }

    private static func shellQuoted(_ word: String) -> String {
        word.allSatisfy { $0.isLetter || $0.isNumber || "-_./=*:,+@".contains($0) }
            ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
