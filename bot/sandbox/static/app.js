// The sandbox page. The server long-polls on the emulator's change condition, so this loop
// only ever has one request waiting; it is aborted and restarted when the view changes.
"use strict";

const DIRECT = "@direct"; // the current persona's one-to-one messages from the bot
const EXAMPLES = [
  ["上报", "上报 上洋村村民李某反映宅基地审批提交8个月仍未批复,涉及历史遗留问题,联系电话13812345678"],
  ["上报 #1", "上报 #1 村里无法协调,需街道出面"],
  ["研判", "研判 #1 属历史遗留,需区自然资源局认定 风险:高"],
  ["交办", "交办 #1 @钱七 区自然资源局 限10个工作日 周二无会日"],
  ["化解", "化解 #1 已现场认定,补办手续,审批已通过"],
  ["查 #1", "查 #1"],
  ["列表", "列表"],
  ["统计", "统计 本年"],
  ["帮助", "帮助"],
];

const $ = (id) => document.getElementById(id);
const state = {
  org: null, people: {}, view: null, since: 0, generation: 0, abort: null,
  counts: {}, // conversation key → messages it holds now (from /api/unread)
  seen: JSON.parse(localStorage.getItem("sandbox.seen") || "{}"), // key → count when last shown
  unreadAbort: null,
};

function persona() {
  return state.people[$("persona").value] || null;
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function status(text) {
  $("status").textContent = text || "";
}

// The one-to-one view is per persona: its unread count is too.
function viewKey(id) {
  if (id !== DIRECT) return id;
  const p = persona();
  return p ? `${DIRECT}:${p.id}` : null;
}

// A count badge on every conversation not shown whose count grew since it was last shown, so a
// notice in another group (or one to one) is seen; opening the conversation clears it.
function markUnread() {
  const shown = viewKey(state.view);
  for (const [key, n] of Object.entries(state.counts)) {
    // Fewer than seen: the sandbox was reset (or restarted) since.
    if (key === shown || (state.seen[key] ?? 0) > n) state.seen[key] = n;
  }
  localStorage.setItem("sandbox.seen", JSON.stringify(state.seen));
  let total = 0;
  for (const b of document.querySelectorAll("#groups button")) {
    const key = viewKey(b.dataset.id);
    const n = key && key in state.counts ? state.counts[key] - (state.seen[key] ?? 0) : 0;
    const badge = b.querySelector(".badge");
    badge.textContent = n > 99 ? "99+" : String(n);
    badge.hidden = n <= 0;
    badge.title = n > 0 ? `${n} 条未读` : "";
    b.classList.toggle("unread", n > 0);
    total += Math.max(n, 0);
  }
  // Also in the tab's title: on a phone the group row may hold the marked group out of sight.
  document.title = (total ? `(${total}) ` : "") + "两难助手 · 本地沙盒";
}

async function watchUnread() {
  let version = "";
  let wait = 0;
  let failures = 0;
  for (;;) {
    const p = persona();
    const controller = new AbortController();
    state.unreadAbort = controller;
    const params = new URLSearchParams({ since: version, wait });
    if (p) params.set("staff", p.id);
    try {
      const response = await fetch(`/api/unread?${params}`, { signal: controller.signal });
      if (!response.ok) throw new Error(await response.text());
      const data = await response.json();
      version = data.version;
      state.counts = {};
      for (const [key, n] of Object.entries(data.counts)) state.counts[key === DIRECT ? viewKey(DIRECT) : key] = n;
      markUnread();
      wait = 25;
      failures = 0;
    } catch (error) {
      if (controller.signal.aborted) { // another persona: ask again at once for its counts
        version = "";
        wait = 0;
        continue;
      }
      failures += 1;
      await new Promise((resolve) => setTimeout(resolve, Math.min(10000, 500 * 2 ** failures)));
    }
  }
}

function renderGroups() {
  const list = $("groups");
  list.textContent = "";
  const entries = state.org.groups.map((g) => ({ id: g.id, name: g.title, sub: `${g.kind_name} · ${g.unit}` }));
  entries.push({ id: DIRECT, name: "单聊消息", sub: "机器人单独发给当前身份的消息" });
  for (const g of entries) {
    const li = el("li");
    const button = el("button");
    button.type = "button";
    button.dataset.id = g.id;
    const name = el("span", "gname", g.name);
    const badge = el("span", "badge");
    badge.hidden = true;
    name.append(badge);
    button.append(name, el("span", "gsub", g.sub));
    button.addEventListener("click", () => selectView(g.id));
    li.append(button);
    list.append(li);
  }
}

function renderPeople() {
  const picker = $("persona");
  const mention = $("mention");
  const byRole = new Map();
  for (const p of state.org.people) {
    state.people[p.id] = p;
    if (!byRole.has(p.role)) byRole.set(p.role, []);
    byRole.get(p.role).push(p);
  }
  for (const [role, people] of byRole) {
    const group = el("optgroup");
    group.label = role;
    for (const p of people) {
      const option = el("option", "", `${p.name} · ${p.role} · ${p.unit}`);
      option.value = p.id;
      group.append(option);
      const at = el("option", "", `@${p.name}(${p.unit})`);
      at.value = p.name;
      mention.append(at);
    }
    picker.append(group);
  }
}

function renderExamples() {
  const box = $("examples");
  for (const [label, text] of EXAMPLES) {
    const button = el("button", "", label);
    button.type = "button";
    button.title = text;
    button.addEventListener("click", () => {
      $("text").value = text;
      $("text").focus();
    });
    box.append(button);
  }
}

function viewTitle(id) {
  if (id === DIRECT) {
    const p = persona();
    return [p ? `${p.name} 的单聊消息` : "单聊消息", "只读:机器人一对一发送的通知"];
  }
  const g = state.org.groups.find((x) => x.id === id);
  return g ? [g.title, `${g.kind_name} · ${g.unit} · 群成员 @两难助手 后发言`] : ["", ""];
}

function selectView(id) {
  state.view = id;
  for (const b of document.querySelectorAll("#groups button")) {
    b.classList.toggle("active", b.dataset.id === id);
    // On a phone the list is one sideways row: keep the chosen group in sight.
    if (b.dataset.id === id) b.scrollIntoView({ block: "nearest", inline: "nearest" });
  }
  const [title, sub] = viewTitle(id);
  $("chat-title").textContent = title;
  $("chat-sub").textContent = sub;
  $("send").disabled = id === DIRECT;
  $("text").disabled = id === DIRECT;
  localStorage.setItem("sandbox.view", id);
  markUnread();
  follow();
}

function showEmpty() {
  const box = $("messages");
  if (box.children.length) return;
  const hint = state.view === DIRECT ? "暂无单聊消息。" : "还没有消息。\n选好身份后,在下方输入「上报 问题描述」试试,或点上方的示例。";
  const empty = el("div", "empty", hint);
  empty.style.whiteSpace = "pre-line";
  box.append(empty);
}

function append(messages) {
  const box = $("messages");
  if (!messages.length) return;
  const stick = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  for (const empty of box.querySelectorAll(".empty")) empty.remove();
  const me = persona();
  for (const m of messages) {
    const row = el("div", "msg" + (m.bot ? " bot" : "") + (me && m.from === me.id ? " mine" : ""));
    row.dataset.n = m.n;
    row.append(el("div", "avatar", m.bot ? "助手" : m.who.slice(-2)));
    const body = el("div", "body");
    body.append(el("div", "who", m.meta ? `${m.who} · ${m.meta}` : m.who));
    const bubble = el("div", "bubble");
    bubble.innerHTML = m.html; // rendered by the server from escaped text
    if (m.card) bubble.append(cardActions(m.card));
    body.append(bubble);
    row.append(body);
    box.append(row);
  }
  if (stick || messages.some((m) => me && m.from === me.id)) box.scrollTop = box.scrollHeight;
}

function cardActions(card) {
  // An interactive card's buttons: a press goes to the bot as DingTalk's card callback.
  const box = el("div", "card-actions");
  if (card.answer) {
    box.append(el("div", "card-answer", card.answer));
    return box;
  }
  const reason = card.input ? el("input", "card-reason") : null;
  if (reason) {
    reason.placeholder = card.input;
    box.append(reason);
  }
  for (const b of card.buttons) {
    const button = el("button", "card-button", b.label);
    button.type = "button";
    button.addEventListener("click", () => press(card, b.action, reason ? reason.value : "", box));
    box.append(button);
  }
  return box;
}

async function press(card, action, reason, box) {
  const p = persona();
  if (!p) return status("请先在右上角选择身份。");
  for (const b of box.querySelectorAll("button")) b.disabled = true;
  try {
    const response = await fetch("/api/press", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ track: card.track, action, reason, staff_id: p.id }),
    });
    if (!response.ok) throw new Error(await response.text());
    status("");
  } catch (error) {
    status(`操作失败:${error.message}`);
  } finally {
    for (const b of box.querySelectorAll("button")) b.disabled = false;
  }
}

async function follow() {
  const generation = ++state.generation;
  if (state.abort) state.abort.abort();
  state.since = 0;
  $("messages").textContent = "";
  let wait = 0; // the first request answers at once with what is there
  let failures = 0;
  while (generation === state.generation) {
    const controller = new AbortController();
    state.abort = controller;
    const params = new URLSearchParams({ since: state.since, wait });
    if (state.view === DIRECT) {
      const p = persona();
      if (!p) return showEmpty();
      params.set("staff", p.id);
    } else {
      params.set("conversation", state.view);
    }
    const path = state.view === DIRECT ? "/api/direct" : "/api/messages";
    try {
      const response = await fetch(`${path}?${params}`, { signal: controller.signal });
      if (!response.ok) throw new Error(await response.text());
      const data = await response.json();
      if (generation !== state.generation) return;
      if (data.total < state.since) { // the sandbox was reset: show the conversation from the start
        state.since = 0;
        $("messages").textContent = "";
        wait = 0;
        continue;
      }
      append(data.messages);
      if (data.messages.length) state.since = data.messages[data.messages.length - 1].n + 1;
      showEmpty();
      if (failures) status("");
      failures = 0;
      wait = 25;
    } catch (error) {
      if (generation !== state.generation) return;
      failures += 1;
      status("与沙盒的连接中断,正在重试…");
      // Back off before retrying a server that is down, instead of hammering it.
      await new Promise((resolve) => setTimeout(resolve, Math.min(10000, 500 * 2 ** failures)));
    }
  }
}

function photoFile() {
  return $("photo").files[0];
}

function readPhoto(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error("照片读取失败"));
    reader.readAsDataURL(file);
  });
}

async function send(event) {
  event.preventDefault();
  const p = persona();
  const text = $("text").value;
  if (!p) return status("请先在右上角选择身份。");
  if (!state.view || state.view === DIRECT) return status("请先选择一个群。");
  if (!text.trim()) return status(photoFile() ? "在群里,照片须与文字一起发送(同一条消息内@我)。" : "");
  $("send").disabled = true;
  try {
    const photo = photoFile() ? await readPhoto(photoFile()) : undefined;
    const response = await fetch("/api/messages", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ conversation: state.view, staff_id: p.id, text, photo }),
    });
    if (!response.ok) throw new Error(await response.text());
    $("text").value = "";
    $("photo").value = "";
    status("");
  } catch (error) {
    status(`发送失败:${error.message}`);
  } finally {
    $("send").disabled = false;
    $("text").focus();
  }
}

function showClock(data) {
  $("clock-now").textContent = data.label + (data.shifted ? "(已快进)" : "");
}

async function refreshClock() {
  try {
    const response = await fetch("/api/clock");
    if (response.ok) showClock(await response.json());
  } catch (error) {
    // the message loop reports a lost connection
  }
}

// Move the sandbox's clock; what became due (周二无会日, 催办, 周报) runs at once and shows up in the groups.
async function jump(event) {
  const buttons = document.querySelectorAll(".clock button");
  for (const b of buttons) b.disabled = true;
  try {
    const response = await fetch("/api/clock", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ jump: event.target.dataset.jump }),
    });
    if (!response.ok) throw new Error(await response.text());
    const moved = await response.json();
    showClock(moved);
    $("clock-ran").textContent = moved.ran || "";  // what ran and what it sent, or that nothing was due
    status("");
  } catch (error) {
    status(`调整时间失败:${error.message}`);
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

async function resetSandbox() {
  const ask = "重置沙盒:清空沙盒数据库和所有群、单聊的消息,问题编号从 #1 重新开始。确定吗?";
  if (!window.confirm(ask)) return;
  $("reset").disabled = true;
  try {
    const response = await fetch("/api/reset", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ confirm: true }),
    });
    if (!response.ok) throw new Error(await response.text());
    state.seen = {};
    state.counts = {};
    markUnread();
    follow();
    $("clock-ran").textContent = "沙盒已重置:数据与消息已清空,编号从 #1 重新开始。";
    status("");
  } catch (error) {
    status(`重置失败:${error.message}`);
  } finally {
    $("reset").disabled = false;
  }
}

// 同步通讯录: `liandong org sync` against the emulator's contacts; its lines shown as printed.
async function syncContacts() {
  $("sync-contacts").disabled = true;
  try {
    const response = await fetch("/api/contacts/sync", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{}",
    });
    if (!response.ok) throw new Error(await response.text());
    const data = await response.json();
    $("clock-ran").textContent = data.lines.join("\n");
    status("");
  } catch (error) {
    status(`同步失败:${error.message}`);
  } finally {
    $("sync-contacts").disabled = false;
  }
}

function insertMention(event) {
  const name = event.target.value;
  event.target.value = "";
  if (!name) return;
  const box = $("text");
  const start = box.selectionStart ?? box.value.length;
  const before = box.value.slice(0, start);
  const pad = before && !/\s$/.test(before) ? " " : "";
  box.value = `${before}${pad}@${name} ${box.value.slice(box.selectionEnd ?? start)}`;
  box.focus();
  const caret = before.length + pad.length + name.length + 2;
  box.setSelectionRange(caret, caret);
}

function choosePersona() {
  const p = persona();
  localStorage.setItem("sandbox.persona", p ? p.id : "");
  if (state.unreadAbort) state.unreadAbort.abort(); // the 单聊 count is this persona's now
  if (p && p.home) selectView(p.home);
  else if (state.view === DIRECT) selectView(DIRECT);
}

async function main() {
  const response = await fetch("/api/org");
  state.org = await response.json();
  if (state.org.dashboard) {
    $("dashboard").href = state.org.dashboard;
    $("dashboard").hidden = false;
  }
  renderGroups();
  renderPeople();
  renderExamples();
  for (const b of document.querySelectorAll(".clock button")) b.addEventListener("click", jump);
  refreshClock();
  setInterval(refreshClock, 30000);
  $("persona").addEventListener("change", choosePersona);
  $("reset").addEventListener("click", resetSandbox);
  $("sync-contacts").addEventListener("click", syncContacts);
  $("mention").addEventListener("change", insertMention);
  $("composer").addEventListener("submit", send);
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) send(event);
  });
  const saved = localStorage.getItem("sandbox.persona");
  if (saved && state.people[saved]) $("persona").value = saved;
  const view = localStorage.getItem("sandbox.view");
  const known = view === DIRECT || state.org.groups.some((g) => g.id === view);
  selectView(known ? view : state.org.groups[0]?.id);
  watchUnread();
}

main().catch((error) => status(`加载失败:${error.message}`));
