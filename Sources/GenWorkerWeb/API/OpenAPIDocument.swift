/// The HTTP API's contract, OpenAPI 3.1, served at `GET /v1/openapi.yaml`. The routes in this
/// folder implement it; `APIContractTests` holds every route to a path here, and CI runs
/// schemathesis against the live API with this document (no 5xx, every response conforms).
enum OpenAPIDocument {
    static let yaml = #"""
        openapi: 3.1.0
        info:
          title: genworker
          version: 1.0.0
          description: |
            Submit video-generation jobs, follow them and cancel them. The job id is the
            idempotency key: submitting an id again returns the existing job and never starts a
            second run. Every state comes from the fleet's ledger as the API process folds it.
            Submitting an id already known answers 200 with the existing job, whatever the
            body says. Authentication: `Authorization: Bearer <token>` (api.tokens, role read,
            submit or admin) or HTTP basic (dashboard.users, for browsers: state-changing
            requests must come from the same origin or api.allowed_origins). Reads need no
            credentials unless api.read_requires_token; credentials that match nothing are a 401.
        servers:
          - url: /
        security:
          - bearer: []
          - basic: []
          - {}
        paths:
          /v1/jobs:
            post:
              operationId: submitJob
              summary: Submit a job (idempotent by id)
              security: [{bearer: []}, {basic: []}]
              requestBody:
                required: true
                content:
                  application/json:
                    schema: {$ref: '#/components/schemas/JobRequest'}
              responses:
                '202': {description: Accepted; the job is queued, content: {application/json: {schema: {$ref: '#/components/schemas/Job'}}}}
                '200': {description: The id was known; the existing job, content: {application/json: {schema: {$ref: '#/components/schemas/Job'}}}}
                '400': {$ref: '#/components/responses/Error'}
                '401': {$ref: '#/components/responses/Error'}
                '403': {$ref: '#/components/responses/Error'}
                '413': {$ref: '#/components/responses/Error'}
                '503': {$ref: '#/components/responses/Error'}
            get:
              operationId: listJobs
              summary: Jobs, newest first, a page at a time
              parameters:
                - {name: state, in: query, schema: {$ref: '#/components/schemas/JobState'}}
                - {name: task, in: query, schema: {type: string}}
                - {name: submitter, in: query, schema: {type: string}}
                - {name: since, in: query, description: submitted at or after (RFC 3339), schema: {type: string, format: date-time}}
                - {name: until, in: query, description: submitted before (RFC 3339), schema: {type: string, format: date-time}}
                - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 1000, default: 100}}
                - {name: cursor, in: query, description: next_cursor of the previous page, schema: {type: string}}
              responses:
                '200': {description: A page of jobs, content: {application/json: {schema: {$ref: '#/components/schemas/JobPage'}}}}
                '400': {$ref: '#/components/responses/Error'}
                '401': {$ref: '#/components/responses/Error'}
          /v1/jobs/{id}:
            get:
              operationId: getJob
              summary: One job, with its timeline
              parameters: [{$ref: '#/components/parameters/id'}]
              responses:
                '200': {description: The job, content: {application/json: {schema: {$ref: '#/components/schemas/Job'}}}}
                '400': {$ref: '#/components/responses/Error'}
                '401': {$ref: '#/components/responses/Error'}
                '404': {$ref: '#/components/responses/Error'}
          /v1/jobs/{id}/wait:
            get:
              operationId: waitJob
              summary: Long poll; answers when the job ends or timeout_s passes (look at state)
              parameters:
                - {$ref: '#/components/parameters/id'}
                - {name: timeout_s, in: query, schema: {type: number, minimum: 0, maximum: 60, default: 30}}
              responses:
                '200': {description: The job, ended or not, content: {application/json: {schema: {$ref: '#/components/schemas/Job'}}}}
                '400': {$ref: '#/components/responses/Error'}
                '401': {$ref: '#/components/responses/Error'}
                '404': {$ref: '#/components/responses/Error'}
          /v1/jobs/{id}/events:
            get:
              operationId: jobEvents
              summary: The job as it changes (server-sent events), until it ends
              description: |
                Each event is `event: job` with the whole job as data and an `id:`; the last one
                is `event: end`, with the ended job as data (a job that has ended already gets
                only that one). Reconnect with `Last-Event-ID`: an unchanged job is not sent again.
                A comment line every 15 s keeps proxies from closing the stream.
              parameters:
                - {$ref: '#/components/parameters/id'}
                - {name: Last-Event-ID, in: header, schema: {type: string}}
              responses:
                '200':
                  description: An event stream; each event as schemathesis and EventSource read it
                  content:
                    text/event-stream:
                      schema:
                        type: object
                        required: [event, data]
                        properties:
                          event: {type: string, enum: [job, end]}
                          id: {type: string}
                          data: {type: string, description: the Job as JSON}
                '400': {$ref: '#/components/responses/Error'}
                '401': {$ref: '#/components/responses/Error'}
                '404': {$ref: '#/components/responses/Error'}
          /v1/jobs/{id}/cancel:
            post:
              operationId: cancelJob
              summary: Cancel; answers with the state the cancel led to
              description: |
                Waits up to wait_s for the job to end: `cancelled` once the worker stopped the
                whole process tree, or the job's own end if it ended first; `cancel_requested`
                stays true on a job that has not ended yet.
              security: [{bearer: []}, {basic: []}]
              parameters:
                - {$ref: '#/components/parameters/id'}
                - {name: wait_s, in: query, schema: {type: number, minimum: 0, maximum: 60, default: 10}}
              responses:
                '200': {description: The job after the cancel, content: {application/json: {schema: {$ref: '#/components/schemas/Job'}}}}
                '400': {$ref: '#/components/responses/Error'}
                '401': {$ref: '#/components/responses/Error'}
                '403': {$ref: '#/components/responses/Error'}
                '404': {$ref: '#/components/responses/Error'}
                '503': {$ref: '#/components/responses/Error'}
          /v1/workers:
            get:
              operationId: listWorkers
              summary: Workers heard from in the window
              responses:
                '200': {description: Workers, content: {application/json: {schema: {$ref: '#/components/schemas/WorkerList'}}}}
                '401': {$ref: '#/components/responses/Error'}
          /v1/queues:
            get:
              operationId: listQueues
              summary: Queue depths
              responses:
                '200': {description: Queues, content: {application/json: {schema: {$ref: '#/components/schemas/QueueList'}}}}
                '401': {$ref: '#/components/responses/Error'}
          /v1/demand:
            get:
              operationId: demand
              summary: Jobs waiting and running, and the workers online with their slots (what to autoscale on)
              description: |
                queued counts the jobs the ledger holds as queued (in the queue, or given back
                and requeued), running the live attempts; running jobs are acked and no longer in
                the broker's queue, so a queue-length scaler alone would scale busy workers away.
              responses:
                '200': {description: The demand, content: {application/json: {schema: {$ref: '#/components/schemas/Demand'}}}}
                '401': {$ref: '#/components/responses/Error'}
          /v1/openapi.yaml:
            get:
              operationId: openapi
              summary: This document
              security: [{}]
              responses:
                '200': {description: OpenAPI 3.1, content: {application/yaml: {schema: {type: object}}}}
        components:
          securitySchemes:
            bearer: {type: http, scheme: bearer}
            basic: {type: http, scheme: basic}
          parameters:
            id:
              name: id
              in: path
              required: true
              schema: {type: string, pattern: '^[A-Za-z0-9_-]{1,128}$'}
          responses:
            Error:
              description: An error, said in words
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/Error'}
          schemas:
            Error:
              type: object
              required: [error]
              properties:
                error:
                  type: object
                  required: [code, message]
                  properties:
                    code: {type: string, enum: [bad_request, unauthorized, forbidden, not_found, method_not_allowed, too_large, unavailable, internal]}
                    message: {type: string}
            JobState:
              type: string
              enum: [queued, running, completed, failed, cancelled]
            JobRequest:
              type: object
              description: The AMQP job message (docs/protocol.md); id optional (one is made up)
              required: [task, params]
              properties:
                id: {type: string, pattern: '^[A-Za-z0-9_-]{1,128}$'}
                task: {type: string, enum: [t2v-A14B, i2v-A14B, ti2v-5B, s2v-14B, animate-14B]}
                params: {type: object}
                timeout_s: {type: integer, minimum: 1}
              additionalProperties: true
            Progress:
              type: object
              properties:
                percent: {type: [integer, 'null']}
                step: {type: [integer, 'null']}
                total: {type: [integer, 'null']}
                eta_s: {type: [integer, 'null']}
                phase: {type: [string, 'null']}
            TimelineEntry:
              type: object
              required: [event]
              properties:
                event: {type: string, enum: [submitted, claimed, cancel_requested, expired, released, ended]}
                at: {type: [string, 'null'], format: date-time}
                attempt: {type: [integer, 'null']}
                worker: {type: [string, 'null']}
                by: {type: [string, 'null']}
            Job:
              type: object
              required: [id, state, cancel_requested]
              properties:
                id: {type: string}
                task: {type: [string, 'null']}
                state: {$ref: '#/components/schemas/JobState'}
                attempt: {type: [integer, 'null']}
                worker: {type: [string, 'null']}
                submitter: {type: [string, 'null']}
                submitted_at: {type: [string, 'null'], format: date-time}
                started_at: {type: [string, 'null'], format: date-time}
                ended_at: {type: [string, 'null'], format: date-time}
                cancel_requested: {type: boolean}
                progress: {oneOf: [{$ref: '#/components/schemas/Progress'}, {type: 'null'}]}
                result: {type: [object, 'null'], description: The terminal result event (docs/protocol.md)}
                timeline: {type: array, items: {$ref: '#/components/schemas/TimelineEntry'}}
            JobPage:
              type: object
              required: [jobs]
              properties:
                jobs: {type: array, items: {$ref: '#/components/schemas/Job'}}
                next_cursor: {type: [string, 'null']}
            WorkerList:
              type: object
              required: [workers]
              properties:
                workers:
                  type: array
                  items:
                    type: object
                    required: [name, slots, busy, online]
                    properties:
                      name: {type: string}
                      node: {type: [string, 'null']}
                      slots: {type: integer}
                      busy: {type: integer}
                      running: {type: array, items: {type: string}}
                      last_heartbeat: {type: string, format: date-time}
                      online: {type: boolean}
                      version: {type: [string, 'null']}
                      quarantined: {type: boolean, description: taking no jobs until its probe passes (worker.quarantine_after)}
            Demand:
              type: object
              required: [queued, running, demand, workers, slots]
              properties:
                queued: {type: integer, minimum: 0}
                running: {type: integer, minimum: 0}
                demand: {type: integer, minimum: 0, description: queued + running}
                workers: {type: integer, minimum: 0, description: workers heard within dashboard.offline_after_s}
                slots: {type: integer, minimum: 0, description: their slots together}
            QueueList:
              type: object
              required: [queues]
              properties:
                queues:
                  type: array
                  items:
                    type: object
                    required: [name, depth]
                    properties:
                      name: {type: string}
                      depth: {type: integer}
        """#
}
