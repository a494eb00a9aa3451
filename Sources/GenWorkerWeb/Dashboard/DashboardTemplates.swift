import GenWorker
import GenWorkerCore
import Mustache

/// The dashboard's pages (Mustache, rendered by swift-mustache). One layout; the jobs page
/// and the job page update themselves from `/api/stream` (server-sent events).
enum DashboardTemplates {
    static func library() throws -> MustacheLibrary {
        var library = MustacheLibrary()
        for (name, text) in [("layout", layout), ("jobs", jobs), ("job", job), ("workers", workers), ("queues", queues), ("submit", submit)] {
            try library.register(text, named: name)
        }
        return library
    }

    static let layout = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>{{title}} · genworker</title>
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <style>
        body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
        header{background:#1d2b36;color:#fff;padding:10px 20px;display:flex;gap:18px;align-items:center}
        header a{color:#cfe3f2;text-decoration:none}header b{margin-right:12px}
        main{padding:16px 20px}table{border-collapse:collapse;width:100%;background:#fff}
        th,td{border-bottom:1px solid #e3e3e3;padding:6px 8px;text-align:left;vertical-align:middle}
        th{background:#f0f3f5}.bar{width:160px;height:12px;background:#e8e8e8;border-radius:6px;overflow:hidden;display:inline-block}
        .bar>i{display:block;height:100%;background:#2f8f5b;width:0}.state-ended{color:#666}
        .completed{color:#2f8f5b}.failed{color:#b3261e}.cancelled{color:#8a6d00}.cancelling{color:#8a6d00;font-style:italic}
        .offline{color:#999}button{cursor:pointer}form.filters input,form.filters select{margin-right:6px}
        pre{background:#f0f0f0;padding:8px;overflow:auto;max-height:320px}.muted{color:#777}
        </style></head><body>
        <header><b>genworker</b><a href="/">Jobs</a><a href="/submit">Submit</a><a href="/workers">Workers</a><a href="/queues">Queues</a>
        <span class="muted" id="conn">{{#connected}}connected{{/connected}}{{^connected}}broker unreachable{{/connected}}</span></header>
        <main>{{$body}}{{/body}}</main>
        <script>
        function fmt(j){
          if(j.state==='ended') return '<span class="'+j.status+'">'+j.status+(j.reason?' ('+j.reason+')':'')+'</span>';
          if(j.cancelling) return '<span class="cancelling">cancelling…</span>';
          return j.state;
        }
        function apply(j){
          window.applied=(window.applied||0)+1;
          document.querySelectorAll('[data-job="'+CSS.escape(j.id)+'"]').forEach(function(row){
            var s=row.querySelector('.st'); if(s) s.innerHTML=fmt(j);
            var b=row.querySelector('.bar>i'); if(b) b.style.width=(j.percent||0)+'%';
            var p=row.querySelector('.pt'); if(p) p.textContent=(j.total?j.step+'/'+j.total:'')+(j.eta_s!=null&&j.state==='running'?' · eta '+j.eta_s+' s':'')+(j.phase?' · '+j.phase:'');
            var w=row.querySelector('.wk'); if(w) w.textContent=j.worker||'';
            var c=row.querySelector('.cancel'); if(c) c.style.display=(j.state==='ended'||j.cancelling)?'none':'';
          });
          if(window.onJob) window.onJob(j);
        }
        function cancelJob(id){
          fetch('/api/jobs/'+encodeURIComponent(id)+'/cancel',{method:'POST',credentials:'same-origin'}).then(function(r){
            if(!r.ok) r.text().then(function(t){alert('cancel: '+t)});
          });
        }
        var es=new EventSource('/api/stream');
        es.onmessage=function(e){apply(JSON.parse(e.data))};
        es.onopen=function(){document.getElementById('conn').textContent='live'};
        </script>
        </body></html>
        """

    static let jobs = """
        {{<layout}}{{$body}}
        <form class="filters" method="get" action="/">
        <select name="state"><option value="">any state</option>{{#states}}<option {{#selected}}selected{{/selected}}>{{name}}</option>{{/states}}</select>
        <select name="task"><option value="">any task</option>{{#tasks}}<option {{#selected}}selected{{/selected}}>{{name}}</option>{{/tasks}}</select>
        <input name="worker" placeholder="worker" value="{{worker}}"><input name="q" placeholder="id or prompt" value="{{q}}">
        <button>Filter</button> <span class="muted">{{count}} shown · {{total}} in the window</span></form>
        <form method="get" action="/jobs" style="margin:8px 0"><input name="id" placeholder="open a job by id"> <button>Open</button></form>
        <table id="jobs"><tr><th>Job</th><th>Task</th><th>State</th><th>Progress</th><th>Worker</th><th>Submitted</th><th></th></tr>
        {{#jobs}}<tr data-job="{{id}}" class="state-{{state}}"><td><a href="/jobs/{{id}}">{{id}}</a><div class="muted">{{prompt}}</div></td><td>{{task}}</td>
        <td class="st">{{#ended}}<span class="{{status}}">{{status}}{{#reason}} ({{reason}}){{/reason}}</span>{{/ended}}{{^ended}}{{#cancelling}}<span class="cancelling">cancelling…</span>{{/cancelling}}{{^cancelling}}{{state}}{{/cancelling}}{{/ended}}</td>
        <td><span class="bar"><i style="width:{{percent}}%"></i></span> <span class="pt muted">{{#total}}{{step}}/{{total}}{{/total}}</span></td>
        <td class="wk">{{worker}}</td><td class="muted">{{submitted}}</td>
        <td>{{^ended}}<button class="cancel" onclick="cancelJob('{{id}}')" {{#cancelling}}style="display:none"{{/cancelling}}>Cancel</button>{{/ended}}</td></tr>{{/jobs}}
        </table>
        <script>window.onJob=function(j){if(!document.querySelector('[data-job="'+CSS.escape(j.id)+'"]')&&!location.search){
          var t=document.getElementById('jobs'),r=t.insertRow(1);r.setAttribute('data-job',j.id);
          r.innerHTML='<td><a href="/jobs/'+encodeURIComponent(j.id)+'"></a><div class="muted"></div></td><td></td><td class="st"></td><td><span class="bar"><i></i></span> <span class="pt muted"></span></td><td class="wk"></td><td class="muted">now</td><td><button class="cancel">Cancel</button></td>';
          r.cells[0].firstChild.textContent=j.id;r.cells[0].lastChild.textContent=j.prompt||'';r.cells[1].textContent=j.task||'';
          r.querySelector('.cancel').onclick=function(){cancelJob(j.id)};apply(j);}};</script>
        {{/body}}{{/layout}}
        """

    static let job = """
        {{<layout}}{{$body}}
        <h2>{{id}} <span class="muted">{{task}}</span></h2>
        <table data-job="{{id}}"><tr><th>State</th><td class="st">{{#ended}}<span class="{{status}}">{{status}}{{#reason}} ({{reason}}){{/reason}}</span>{{/ended}}{{^ended}}{{#cancelling}}<span class="cancelling">cancelling…</span>{{/cancelling}}{{^cancelling}}{{state}}{{/cancelling}}{{/ended}}
        {{^ended}} <button class="cancel" onclick="cancelJob('{{id}}')" {{#cancelling}}style="display:none"{{/cancelling}}>Cancel</button>{{/ended}}</td></tr>
        <tr><th>Progress</th><td><span class="bar"><i style="width:{{percent}}%"></i></span> <span class="pt muted">{{#total}}{{step}}/{{total}}{{/total}}</span></td></tr>
        <tr><th>Worker</th><td class="wk">{{worker}}</td></tr>
        <tr><th>Submitted</th><td>{{submitted}}</td></tr>
        {{#result}}<tr><th>Started / ended</th><td>{{started_at}} → {{ended_at}} ({{elapsed_s}} s)</td></tr>
        <tr><th>Message</th><td>{{message}}</td></tr>{{/result}}
        </table>
        <h3>Attempts</h3><table><tr><th>#</th><th>Worker</th><th>Claimed</th><th>Ended</th><th>Outcome</th></tr>
        {{#attempts}}<tr><td>{{number}}</td><td>{{worker}}</td><td>{{claimed}}</td><td>{{ended}}</td><td>{{outcome}}</td></tr>{{/attempts}}</table>
        <h3>Params</h3><pre>{{params}}</pre>
        {{#command}}<h3>Command line</h3><pre>{{command}}</pre>{{/command}}
        {{#video}}<h3>Video</h3><video id="video" src="{{video}}" controls width="640"></video>{{/video}}
        {{^video}}{{#output}}<h3>Output</h3><pre>{{output}}</pre>{{/output}}{{/video}}
        {{#outputURI}}<p>Stored at <code>{{outputURI}}</code>{{#video}} (<a href="{{video}}">download</a>){{/video}}</p>{{/outputURI}}
        {{#logTail}}<h3>Log tail</h3><pre>{{logTail}}</pre>{{/logTail}}
        <script>window.onJob=function(j){if(j.id==='{{id}}'&&j.state==='ended'&&!window.reloaded){window.reloaded=true;setTimeout(function(){location.reload()},300)}};</script>
        {{/body}}{{/layout}}
        """

    static let workers = """
        {{<layout}}{{$body}}
        <h2>Workers</h2><table id="workers"><tr><th>Name</th><th>Node</th><th>Slots busy / total</th><th>Running</th><th>Last heartbeat</th><th>State</th><th>Version</th></tr>
        {{#workers}}<tr class="{{^online}}offline{{/online}}"><td>{{name}}</td><td>{{node}}</td><td>{{busy}} / {{slots}}</td>
        <td>{{#running}}<a href="/jobs/{{.}}">{{.}}</a> {{/running}}</td><td>{{seconds_ago}} s ago</td><td>{{#online}}online{{/online}}{{^online}}offline{{/online}}</td><td>{{version}}</td></tr>{{/workers}}
        </table><p class="muted">Silent for {{offline_after}} s: offline; for {{drop_after}} s: dropped.</p>
        {{/body}}{{/layout}}
        """

    static let queues = """
        {{<layout}}{{$body}}
        <h2>Queues</h2><table id="queues"><tr><th>Queue</th><th>Messages</th></tr>
        {{#queues}}<tr><td>{{name}}</td><td>{{depth}}</td></tr>{{/queues}}</table>
        <p class="muted">Ledger: {{folded}} records folded, {{jobs}} jobs in the window{{#lag}}, last record {{lag}} s ago{{/lag}}.</p>
        {{/body}}{{/layout}}
        """

    static let submit = """
        {{<layout}}{{$body}}
        <h2>Submit</h2>
        <p><select id="task" onchange="showTask(this.value)">{{#tasks}}<option value="{{name}}">{{name}}</option>{{/tasks}}</select></p>
        {{#tasks}}<form class="task" data-task="{{name}}" style="display:none" onsubmit="return send(this)"><table>
        {{#fields}}<tr><th>{{name}}{{#required}} *{{/required}}</th><td>
        {{#hasChoices}}<select name="{{name}}">{{#blank}}<option value="">generate.py's default</option>{{/blank}}{{#choices}}<option>{{.}}</option>{{/choices}}</select>{{/hasChoices}}
        {{^hasChoices}}{{#flag}}<input type="checkbox" name="{{name}}" value="true">{{/flag}}{{^flag}}{{#long}}<textarea name="{{name}}" rows="3" cols="70"></textarea>{{/long}}{{^long}}<input name="{{name}}" placeholder="{{hint}}">{{/long}}{{/flag}}{{/hasChoices}}
        </td></tr>{{/fields}}
        <tr><th>timeout_s</th><td><input name="timeout_s" placeholder="default {{defaultTimeout}}"></td></tr>
        </table><p><button class="generate" type="submit">Generate</button> <span class="status"></span></p></form>{{/tasks}}
        <table data-job="" id="current" style="display:none"><tr><th>Job</th><td class="jid"></td><td class="st"></td><td><span class="bar"><i></i></span> <span class="pt muted"></span></td></tr></table>
        <script>
        function newID(){return 'web-'+Date.now().toString(36)+'-'+Math.random().toString(36).slice(2,8)}
        var current=JSON.parse(sessionStorage.getItem('genworker.current')||'null');
        function showTask(t){document.querySelectorAll('form.task').forEach(function(f){f.style.display=f.dataset.task===t?'':'none'})}
        function setRunning(job){
          current=job;sessionStorage.setItem('genworker.current',JSON.stringify(job));
          var cur=document.getElementById('current');cur.style.display='';cur.setAttribute('data-job',job.id);cur.querySelector('.jid').innerHTML='<a href="/jobs/'+encodeURIComponent(job.id)+'">'+job.id+'</a>';
          document.querySelectorAll('button.generate').forEach(function(b){b.textContent='Cancel';b.disabled=false});
        }
        function setIdle(){current=null;sessionStorage.removeItem('genworker.current');
          document.querySelectorAll('button.generate').forEach(function(b){b.textContent='Generate';b.disabled=false})}
        function send(form){
          var button=form.querySelector('button.generate');
          if(current){button.disabled=true;cancelJob(current.id);return false}
          var params={},timeout=null;
          new FormData(form).forEach(function(v,k){if(v==='')return;if(k==='timeout_s'){timeout=parseInt(v,10);return}
            params[k]=v==='true'?true:(/^-?[0-9]+$/.test(v)&&k!=='prompt'?parseInt(v,10):(/^-?[0-9]*[.][0-9]+$/.test(v)&&k!=='prompt'?parseFloat(v):v))});
          var job={id:(form.dataset.pending||newID()),task:form.dataset.task,params:params};if(timeout)job.timeout_s=timeout;
          form.dataset.pending=job.id;button.disabled=true;
          fetch('/api/jobs',{method:'POST',credentials:'same-origin',headers:{'content-type':'application/json'},body:JSON.stringify(job)}).then(function(r){
            return r.text().then(function(t){
              if(r.ok){delete form.dataset.pending;setRunning(job);form.querySelector('.status').textContent='submitted '+job.id}
              else{button.disabled=false;form.querySelector('.status').textContent=t;if(r.status===400)delete form.dataset.pending}
            })});
          return false;
        }
        window.onJob=function(j){if(current&&j.id===current.id&&j.state==='ended'){setIdle()}};
        showTask(document.getElementById('task').value);
        if(current){setRunning(current);fetch('/api/jobs/'+encodeURIComponent(current.id)).then(function(r){return r.ok?r.json():null}).then(function(j){if(j){apply(j)}})}
        </script>
        {{/body}}{{/layout}}
        """
}
