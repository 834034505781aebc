// Web chat client for "Trợ lý ảo cải cách hành chính".
// Served under a strict CSP (default-src 'self'): no inline code or styles, and
// server/user text is only ever put into the page via textContent / createElement.
'use strict';

(() => {
  const API_URL = '/api/chat';
  const USER_ID_KEY = 'cchc_user_id';
  const MAX_LEN = 2000;
  const TIMEOUT_MS = 30000;
  const ERROR_TEXT = 'Xin lỗi, hệ thống đang bận. Bạn vui lòng thử lại sau ít phút.';

  const form = document.getElementById('chat-form');
  const input = document.getElementById('chat-input');
  const sendBtn = document.getElementById('send-button');
  const messages = document.getElementById('messages');
  const scroller = document.getElementById('chat-scroll');
  const typing = document.getElementById('typing');

  let busy = false;

  // ---------- User id: random, unguessable, never derived from anything else ----------
  function newUserId() {
    if (window.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    // randomUUID only exists in secure contexts (e.g. not on a plain-http LAN address).
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  function getUserId() {
    try {
      let id = localStorage.getItem(USER_ID_KEY);
      if (!id || !/^[0-9a-f-]{32,36}$/i.test(id)) {
        id = newUserId();
        localStorage.setItem(USER_ID_KEY, id);
      }
      return id;
    } catch (_) {
      // Storage blocked (private mode, policies): keep an id for this page load only.
      return newUserId();
    }
  }

  const userId = getUserId();

  // ---------- Small DOM helpers ----------
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  // Returns a normalised href only for http(s) URLs; everything else is rejected.
  function safeUrl(raw) {
    try {
      const u = new URL(String(raw).trim());
      return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
    } catch (_) { return null; }
  }

  function makeLink(href, label, className) {
    const a = el('a', className, label);
    a.href = href;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    return a;
  }

  // ---------- Markdown-lite rendering ----------
  // Inline tokens: **bold** | [label](url) | bare http(s) URL.
  const INLINE_RE = /\*\*(.+?)\*\*|\[([^\]\n]+)\]\(([^()\s]+)\)|(https?:\/\/[^\s<>"]+)/gi;
  const TRAILING_PUNCT_RE = /[.,;:!?)\]'"»]+$/;

  function appendInline(parent, text) {
    let last = 0;
    for (const m of text.matchAll(INLINE_RE)) {
      if (m.index > last) parent.append(text.slice(last, m.index));
      last = m.index + m[0].length;
      if (m[1] !== undefined) {
        const strong = el('strong');
        appendInline(strong, m[1]); // bold may contain links
        parent.append(strong);
      } else if (m[2] !== undefined) {
        const href = safeUrl(m[3]);
        // Non-http(s) targets (javascript:, tel:, relative…) stay as plain text.
        parent.append(href ? makeLink(href, m[2]) : m[0]);
      } else {
        // Bare URL: don't swallow sentence punctuation such as "… tại https://x.vn."
        const trail = (m[4].match(TRAILING_PUNCT_RE) || [''])[0];
        const url = m[4].slice(0, m[4].length - trail.length);
        const href = safeUrl(url);
        parent.append(href ? makeLink(href, url) : url);
        if (trail) parent.append(trail);
      }
    }
    if (last < text.length) parent.append(text.slice(last));
  }

  function renderRichText(container, text) {
    const lines = String(text).replace(/\r\n?/g, '\n').split('\n');
    let para = null;
    let list = null;
    for (const line of lines) {
      if (!line.trim()) { para = null; list = null; continue; } // blank line ends block
      const bullet = /^\s*[-•]\s+(.*)$/.exec(line);
      const numbered = bullet ? null : /^\s*(\d{1,3})[.)]\s+(.*)$/.exec(line);
      if (bullet || numbered) {
        const type = bullet ? 'ul' : 'ol';
        if (!list || list.tagName.toLowerCase() !== type) {
          list = el(type);
          // Keep numbering when the server separates "1." and "2." with blank lines.
          if (numbered && numbered[1] !== '1') list.start = Number(numbered[1]);
          container.append(list);
        }
        para = null;
        const li = el('li');
        appendInline(li, bullet ? bullet[1] : numbered[2]);
        list.append(li);
      } else {
        list = null;
        if (para) para.append(el('br'));
        else { para = el('p'); container.append(para); }
        appendInline(para, line.trim());
      }
    }
  }

  // ---------- Messages ----------
  function scrollToBottom() {
    scroller.scrollTop = scroller.scrollHeight;
  }

  function renderButtons(buttons) {
    const wrap = el('div', 'chips');
    for (const b of buttons) {
      if (!b || typeof b.title !== 'string' || !b.title) continue;
      if (typeof b.url === 'string') {
        const href = safeUrl(b.url);
        if (href) wrap.append(makeLink(href, b.title, 'chip chip-link'));
      } else if (typeof b.payload === 'string') {
        const btn = el('button', 'chip', b.title);
        btn.type = 'button';
        btn.addEventListener('click', () => {
          exchange({ user_id: userId, payload: b.payload }, b.title, null);
        });
        wrap.append(btn);
      }
    }
    return wrap.childElementCount ? wrap : null;
  }

  function addMessage(role, text, buttons, isError) {
    const row = el('div', `msg msg-${role}${isError ? ' msg-error' : ''}`);
    // Speaker label for screen readers (aria-live announces the whole row).
    row.append(el('span', 'visually-hidden', role === 'user' ? 'Bạn: ' : 'Trợ lý: '));
    if (text) {
      const bubble = el('div', 'bubble');
      if (role === 'user') bubble.textContent = text; // citizen text shown exactly as typed
      else renderRichText(bubble, text);
      row.append(bubble);
    }
    const chips = Array.isArray(buttons) ? renderButtons(buttons) : null;
    if (chips) row.append(chips);
    messages.append(row);
    scrollToBottom();
  }

  function setBusy(value) {
    busy = value;
    sendBtn.disabled = value;
    typing.hidden = !value;
    messages.classList.toggle('is-busy', value);
    if (value) scrollToBottom();
  }

  // ---------- Network ----------
  async function postChat(body) {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
    try {
      const res = await fetch(API_URL, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
        signal: ctrl.signal,
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`); // server's {"error"} is not shown to citizens
      const data = await res.json();
      if (!data || !Array.isArray(data.replies)) throw new Error('Malformed response');
      return data.replies;
    } finally {
      clearTimeout(timer);
    }
  }

  // Sends one request; shows `userText` as the citizen's bubble (if given) and,
  // on failure, puts `restoreText` back into the input so nothing is lost.
  async function exchange(body, userText, restoreText) {
    if (busy) return;
    if (userText) addMessage('user', userText);
    setBusy(true);
    try {
      const replies = await postChat(body);
      for (const r of replies) {
        if (r && typeof r === 'object') addMessage('bot', typeof r.text === 'string' ? r.text : '', r.buttons);
      }
    } catch (err) {
      console.warn('Chat request failed:', err);
      addMessage('bot', ERROR_TEXT, null, true);
      if (restoreText && !input.value) { input.value = restoreText; autoGrow(); }
    } finally {
      setBusy(false);
    }
  }

  // ---------- Input ----------
  function autoGrow() {
    // Height is capped at ~4 lines by max-height in chat.css (then it scrolls).
    input.style.height = 'auto';
    input.style.height = `${input.scrollHeight + (input.offsetHeight - input.clientHeight)}px`;
  }

  function submitInput() {
    if (busy) return;
    const raw = input.value;
    const text = raw.trim().slice(0, MAX_LEN);
    if (!text) { input.focus(); return; }
    input.value = '';
    autoGrow();
    exchange({ user_id: userId, text }, text, raw);
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    submitInput();
  });

  input.addEventListener('keydown', (e) => {
    // isComposing / keyCode 229: Enter confirms a Vietnamese IME (Telex/VNI) composition, don't send.
    if (e.key !== 'Enter' || e.shiftKey || e.isComposing || e.keyCode === 229) return;
    e.preventDefault();
    submitInput();
  });

  input.addEventListener('input', autoGrow);

  // ---------- Greeting: once per page load ----------
  exchange({ user_id: userId, payload: 'start' }, null, null);
})();
