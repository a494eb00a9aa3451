#!/usr/bin/env python3
"""The dashboard in a real browser: headless Chromium from Debian's packages, driven with
selenium through Debian's chromium-driver. Run by DashboardBrowserTests (the Swift suite),
which starts a broker, a worker and `genworker dashboard` first.

    dashboard_browser.py BASE_URL USER PASSWORD OUTPUTS_DIR SCREENSHOT_DIR

Tab A submits through the form and watches its Generate button turn into Cancel; tab B
(the jobs page) sees the same job live: its bar moves, pushed by server-sent events. Tab A
presses Cancel; both tabs show `cancelled`, and when they do the generator is gone.
Prints a JSON report; exits non-zero on the first failed expectation.
"""
import base64
import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

base, user, password, outputs, shots = sys.argv[1:6]
os.makedirs(shots, exist_ok=True)
report = {}


def fail(message):
    report["failure"] = message
    print(json.dumps(report, indent=1))
    sys.exit(1)


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"]:
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    # HTTP basic auth for every request of the page (fetch and EventSource too).
    token = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": "Basic " + token}})
    return driver


def run_file(outputs, job, suffix):
    """The stand-in's <job>.mp4<suffix> in the worker's run directory (outputs/.runs/<job>.<attempt>/)."""
    import glob
    found = sorted(glob.glob(os.path.join(outputs, ".runs", glob.escape(job) + ".*", job + ".mp4" + suffix)))
    return found[-1] if found else os.path.join(outputs, job + ".mp4" + suffix)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


a = browser()
b = browser()
try:
    t0 = time.time()
    b.get(base + "/")
    report["jobs_page_load_s"] = round(time.time() - t0, 3)
    a.get(base + "/submit")
    Select(a.find_element(By.ID, "task")).select_by_value("t2v-A14B")
    form = a.find_element(By.CSS_SELECTOR, 'form[data-task="t2v-A14B"]')
    form.find_element(By.NAME, "prompt").send_keys("a red fox in the browser [[step_s=0.25]] [[record_sigterm]]")
    Select(form.find_element(By.NAME, "size")).select_by_visible_text("832*480")
    form.find_element(By.NAME, "sample_steps").send_keys("200")
    button = form.find_element(By.CSS_SELECTOR, "button.generate")
    button.click()
    WebDriverWait(a, 15).until(lambda d: button.text == "Cancel")
    job = a.find_element(By.CSS_SELECTOR, "#current .jid").text
    report["job"] = job
    # Tab B: the job appears by itself and its bar moves.
    row = WebDriverWait(b, 20).until(lambda d: d.find_element(By.CSS_SELECTOR, 'tr[data-job="%s"]' % job))
    widths = []
    deadline = time.time() + 30
    while time.time() < deadline and len(set(widths)) < 3:
        w = b.execute_script("var i=document.querySelector('tr[data-job=\"%s\"] .bar>i');return i?i.style.width:''" % job)
        if w and w != "0%" and (not widths or widths[-1] != w):
            widths.append(w)
        time.sleep(0.2)
    report["tab_b_bar_widths"] = widths
    if len(set(widths)) < 3:
        fail("the bar in the second tab did not move")
    a.save_screenshot(os.path.join(shots, "submit.png"))
    b.save_screenshot(os.path.join(shots, "jobs.png"))
    # Cancel from tab A; both tabs must say cancelled, and only once the generator is gone.
    started = json.load(open(run_file(outputs, job, ".argv.json")))
    pid = started["pid"]
    button.click()
    seen = {}
    deadline = time.time() + 30
    while time.time() < deadline and len(seen) < 2:
        for name, driver in (("a", a), ("b", b)):
            if name in seen:
                continue
            text = driver.execute_script(
                "var r=document.querySelector('[data-job=\"%s\"] .st');return r?r.textContent:''" % job)
            if "cancelling" in text:
                report.setdefault("cancelling_seen_in", []).append(name) if name not in report.get("cancelling_seen_in", []) else None
            if "cancelled" in text:
                seen[name] = time.time()
                if alive(pid):
                    fail("tab %s shows cancelled while the generator (pid %d) is alive" % (name, pid))
        time.sleep(0.05)
    report["cancelled_seen_in"] = sorted(seen)
    if len(seen) < 2:
        fail("cancelled did not reach both tabs")
    report["sigterm_recorded"] = os.path.exists(run_file(outputs, job, ".sigterm"))
    WebDriverWait(a, 10).until(lambda d: button.text == "Generate")
    report["button_after"] = button.text
    # The job's own page, the workers and the queues.
    b.get(base + "/jobs/" + job)
    if "cancelled" not in b.find_element(By.CSS_SELECTOR, "td.st").text:
        fail("the job page does not say cancelled")
    b.save_screenshot(os.path.join(shots, "job.png"))
    b.get(base + "/workers")
    report["workers_rows"] = len(b.find_elements(By.CSS_SELECTOR, "#workers tr")) - 1
    b.save_screenshot(os.path.join(shots, "workers.png"))
    b.get(base + "/queues")
    b.save_screenshot(os.path.join(shots, "queues.png"))
    b.get(base + "/")
    b.save_screenshot(os.path.join(shots, "jobs-after.png"))
finally:
    a.quit()
    b.quit()
print(json.dumps(report, indent=1))
