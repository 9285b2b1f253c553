"""deepzoo serve: the JSON API answers as the Python API does, bad input is a 4xx JSON error after which the
server goes on, and the pages work in a real browser (headless Chromium: a digit drawn on the canvas, a
Chinese review typed, samples drawn). The runs are those of the session's quick tour (tests/conftest.py)."""

import base64
import io
import os
import re
import subprocess
import sys
import threading

import pytest

pytest.importorskip("fastapi", reason="deepzoo serve needs FastAPI: pip install -e '.[serve]'")
pytest.importorskip("uvicorn", reason="deepzoo serve needs uvicorn: pip install -e '.[serve]'")
httpx = pytest.importorskip("httpx", reason="the tests talk to the server with httpx: pip install -e '.[test]'")

RUNS = ("cnn-mnist", "bilstm-sst2", "bilstm-waimai", "gpt-shakespeare", "ddpm-mnist", "gcn-cora", "dqn-cartpole")


@pytest.fixture(scope="module")
def server(quick_tour):
    """The app on a free loopback port, served by a thread of this process."""
    from deepzoo.serve.app import Background, create_app
    app = create_app([quick_tour / name for name in RUNS], log=lambda *_: None)
    with Background(app) as url:
        yield url


def post(url: str, run: str, inputs, **options) -> httpx.Response:
    return httpx.post(f"{url}/api/runs/{run}/predict", json={"inputs": inputs, "options": options}, timeout=120)


def png(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def a_one():
    """A '1' drawn as a person would: a thick black stroke on white paper."""
    from PIL import Image, ImageDraw
    image = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(image).line([(150, 40), (135, 240)], fill=0, width=20)
    return image


def test_the_api_answers_as_the_python_api_does(server, quick_tour):
    import deepzoo
    runs = httpx.get(f"{server}/api/runs").json()
    assert [r["name"] for r in runs] == list(RUNS)
    cnn = runs[0]
    assert (cnn["recipe"], cnn["family"], cnn["kind"], cnn["metric"]) == ("cnn-mnist", "CNN", "image", "test_acc")
    assert cnn["figure"].endswith("%") and cnn["reference"]["figure"] == "99.25%" and cnn["page"] == "/runs/cnn-mnist"

    sentences = ["a gripping, funny and beautifully acted film", "dull"]
    got = post(server, "bilstm-sst2", sentences)
    assert got.status_code == 200 and got.json() == deepzoo.load(quick_tour / "bilstm-sst2").predict(sentences)
    got = post(server, "cnn-mnist", [png(a_one()), "data:image/png;base64," + png(a_one())]).json()
    expected = deepzoo.load(quick_tour / "cnn-mnist").predict(a_one().convert("RGB"))
    assert got[0] == got[1] == expected and got[0]["class"] == "1"
    got = post(server, "gpt-shakespeare", ["ROMEO:"], length=40, temperature=0.8, top_k=5, seed=3).json()
    assert got == deepzoo.load(quick_tour / "gpt-shakespeare").predict(["ROMEO:"], length=40, temperature=0.8,
                                                                         top_k=5, seed=3)

    [samples] = post(server, "ddpm-mnist", ["sample"], seed=1).json()       # pictures come inline, not as paths
    assert samples["wrote"] == ["sample.png", "sample-denoising.png"]
    assert all(src.startswith("data:image/png;base64,iVBOR") for src in samples["images"])
    [node] = post(server, "gcn-cora", ["1708"]).json()
    assert {"class", "probabilities", "label", "split", "neighbours", "degree"} <= set(node) and node["degree"] > 0
    [episode] = post(server, "dqn-cartpole", ["episode"], seed=0).json()
    assert episode["env"] == "CartPole-v1" and len(episode["frames"]) == episode["length"] + 1 > 1
    assert episode["frames"][0].startswith("data:image/png;base64,")

    spec = httpx.get(f"{server}/openapi.json").json()
    assert {"/api/runs", "/api/runs/{name}/predict"} <= set(spec["paths"])
    assert "requestBody" in spec["paths"]["/api/runs/{name}/predict"]["post"]
    for page in ("/", "/docs", "/runs/cnn-mnist", "/runs/bilstm-waimai", "/runs/ddpm-mnist", "/runs/gcn-cora",
                 "/runs/dqn-cartpole", "/runs/gpt-shakespeare"):
        r = httpx.get(server + page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert not re.search(r"""(src|href)=["'](https?:)?//""", r.text), f"{page} loads something from elsewhere"


def test_requests_to_one_model_run_concurrently(server):
    """16 threads at once on a lock-free model (the text classifier) and on a locked one (the char GPT): every
    answer is the one a lone request gets."""
    text, gpt = ("bilstm-sst2", ["a fine film"], {}), ("gpt-shakespeare", ["KING:"], {"length": 20, "seed": 1})
    alone = {run: post(server, run, inputs, **options).json() for run, inputs, options in (text, gpt)}
    answers, lock = [], threading.Lock()

    def ask(run, inputs, options):
        r = post(server, run, inputs, **options)
        with lock:
            answers.append((run, r.status_code, r.json()))
    threads = [threading.Thread(target=ask, args=args) for args in [text] * 8 + [gpt] * 8]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 16 and all(status == 200 and got == alone[run] for run, status, got in answers)


def test_bad_input_is_a_4xx_json_error_and_the_server_goes_on(server):
    from PIL import Image
    not_an_image = base64.b64encode(b"GIF89a, or so it says").decode()
    huge = png(Image.new("1", (5000, 5000), 1))               # 25 million pixels in a few kB of PNG
    bomb = png(Image.new("1", (20000, 20000), 1))             # 400 million: Pillow's own guard
    cases = [
        ("cnn-mnist", {"inputs": [not_an_image]}, 400, "cannot read the image"),
        ("cnn-mnist", {"inputs": ["no base64 here!"]}, 400, "not base64"),
        ("cnn-mnist", {"inputs": ["/etc/passwd"]}, 400, "not base64"),          # a path is never opened
        ("cnn-mnist", {"inputs": [huge]}, 400, "at most 16,777,216 are read"),
        ("cnn-mnist", {"inputs": [bomb]}, 400, "decompression bomb"),
        ("cnn-mnist", {"inputs": [png(Image.new("L", (28, 28), 255))]}, 400, "blank"),
        ("bilstm-waimai", {"inputs": [""]}, 400, "input 0 is empty"),
        ("bilstm-sst2", {"inputs": ["   "]}, 400, "input 0 is empty"),
        ("bilstm-sst2", {"inputs": []}, 422, "inputs"),
        ("bilstm-sst2", {"inputs": [7]}, 422, "inputs.0"),
        ("bilstm-sst2", {"inputs": ["fine"], "options": {"beam": 3}}, 400, "does not take beam"),
        ("bilstm-sst2", {"inputs": ["fine"], "options": {"colour": 3}}, 422, "options.colour"),
        ("bilstm-sst2", {"sentences": ["fine"]}, 422, "inputs"),
        ("gpt-shakespeare", {"inputs": ["ROMEO:"], "options": {"temperature": -1}}, 422, "options.temperature"),
        ("gpt-shakespeare", {"inputs": ["ROMEO:"], "options": {"temperature": 1e-300}}, 422, "at least 0.01"),
        ("gpt-shakespeare", {"inputs": ["ROMEO:"], "options": {"length": 10**9}}, 422, "options.length"),
        ("no-such-run", {"inputs": ["fine"]}, 404, "no run named 'no-such-run'"),
        ("gcn-cora", {"inputs": ["/tmp/embedding.png"]}, 400, "no node"),       # the CLI would write a plot there
        ("dqn-cartpole", {"inputs": ["1000000"]}, 400, "at most 1,000 episodes"),
    ]
    for run, body, status, words in cases:
        r = httpx.post(f"{server}/api/runs/{run}/predict", json=body, timeout=60)
        assert (r.status_code, r.headers["content-type"]) == (status, "application/json"), (run, body, r.text)
        assert words in r.json()["error"], (run, r.json())
        assert post(server, "bilstm-sst2", ["a fine film"]).status_code == 200       # and it goes on
    for content, status, words in ((b'{"inputs": ["ok"', 422, "not JSON"),
                                   (b'{"inputs": ["ok"], "options": {"temperature": NaN}}', 422, "finite"),
                                   (b"x" * (8 * 1024 * 1024 + 1), 413, "over 8,388,608 bytes")):
        r = httpx.post(f"{server}/api/runs/gpt-shakespeare/predict", content=content,
                       headers={"Content-Type": "application/json"}, timeout=60)
        assert r.status_code == status and words in r.json()["error"], r.text
    r = httpx.get(f"{server}/api/runs", headers={"Host": "attacker.example"})     # DNS rebinding
    assert r.status_code == 400 and "127.0.0.1 or localhost only" in r.json()["error"]
    assert httpx.get(f"{server}/static/..%2Fapp.py").status_code == 404
    assert httpx.get(f"{server}/runs/nothing").json()["error"].startswith("no run named")
    assert post(server, "cnn-mnist", [png(a_one())]).json()[0]["class"] == "1"


def example(run: dict) -> dict:
    """A request each kind of run answers (images: the drawn '1'; others: the examples the page offers)."""
    inputs = {"image": [png(a_one())], "sample": ["sample"], "rl": ["episode", "3"],
              "graph": run["examples"][:2]}.get(run["kind"], run["examples"][:2])
    return {"inputs": inputs, "options": {"length": 20} if "length" in run["options"] else {}}


def test_the_command_line_serves_a_folder_of_runs(quick_tour, tmp_path):
    """`deepzoo serve FOLDER --port 0` in a fresh process: every run of the tour loads, its page opens and it
    answers a request of its kind; a missing folder or a port in use is one error line."""
    from conftest import deepzoo_main

    from deepzoo.runs import find_runs
    status, _, err = deepzoo_main("serve", str(tmp_path / "missing"))
    assert status == 2 and err.startswith("deepzoo: error:") and len(err.splitlines()) == 1
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        status, _, err = deepzoo_main("serve", str(quick_tour), "--port", str(taken.getsockname()[1]))
    assert status == 2 and "cannot listen on 127.0.0.1" in err
    proc = subprocess.Popen([sys.executable, "-m", "deepzoo", "serve", str(quick_tour), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert url, (line, proc.stderr.read() if proc.poll() is not None else "")
        runs = httpx.get(url.group() + "/api/runs", timeout=30).json()
        names = []          # every run, a second folder of the same name (an experiment's run) as NAME-2
        for run in find_runs(quick_tour):
            name, k = run.name, 2
            while name in names:
                name, k = f"{run.name}-{k}", k + 1
            names.append(name)
        assert [r["name"] for r in runs] == names
        for run in runs:
            assert httpx.get(url.group() + run["page"]).status_code == 200
            r = httpx.post(f"{url.group()}/api/runs/{run['name']}/predict", json=example(run), timeout=120)
            assert r.status_code == 200 and len(r.json()) == len(example(run)["inputs"]), (run["name"], r.text)
    finally:
        proc.terminate()
        proc.wait(30)


# --- in a real browser ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from conftest import headless_chromium
    driver = headless_chromium(tmp_path_factory.mktemp("profile"), 1100, 900)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(driver, condition, seconds: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, seconds).until(condition)


def page_errors(driver) -> list:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_a_digit_drawn_on_the_canvas_is_classified(server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    browser.get(f"{server}/runs/cnn-mnist")
    wait_for(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "cnn-mnist")
    pad = browser.find_element(By.ID, "pad")
    stroke = ActionChains(browser).move_to_element_with_offset(pad, 8, -100).click_and_hold()   # a '1', top down
    for _ in range(10):
        stroke.move_by_offset(-1, 20)
    stroke.release().perform()
    assert wait_for(browser, lambda d: d.find_element(By.ID, "class").text) == "1"
    bars = browser.find_elements(By.CSS_SELECTOR, "#bars .bar")
    assert len(bars) == 10 and bars[0].find_element(By.CLASS_NAME, "name").text == "1"
    assert not page_errors(browser)


def test_a_chinese_review_gets_its_label(server, browser):
    from selenium.webdriver.common.by import By
    browser.get(f"{server}/runs/bilstm-waimai")
    wait_for(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "bilstm-waimai")
    browser.find_element(By.ID, "text").send_keys("太难吃了，送得又慢，再也不点了")
    browser.find_element(By.ID, "go").click()
    assert wait_for(browser, lambda d: d.find_element(By.ID, "class").text) == "0"        # negative
    assert "难吃" in browser.find_element(By.ID, "tokens").text
    assert not page_errors(browser)


def test_samples_appear_on_the_generative_page(server, browser):
    from selenium.webdriver.common.by import By
    browser.get(f"{server}/runs/ddpm-mnist")
    wait_for(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "ddpm-mnist")
    browser.find_element(By.ID, "sample").click()
    widths = wait_for(browser, lambda d: d.execute_script(
        "const w = Array.from(document.querySelectorAll('#images img')).map(i => i.complete ? i.naturalWidth : 0);"
        "return w.length === 2 && w.every(x => x > 0) ? w : null;"))
    assert widths[0] > 100                                      # the grid of 64, and the denoising strip
    captions = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#images figcaption")]
    assert captions[0] == "64 samples" and captions[1].startswith("denoising")
    assert not page_errors(browser)
