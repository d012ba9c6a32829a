"""Writes the seed corpora fuzz/corpus/<target>/ from the repository's
fixtures: the README's request examples, the bundled policies, schema,
sample world, test suites and route map, tests/data, and a few shapes of
Cedar's integration tests (moved and cyclic entities, multi-byte text
before an error). Each file starts with the target's selector byte (see
each target's header). Needs PyYAML. Run from anywhere:
python3 fuzz/tools/seeds.py (it adds files; delete a target's directory
first to regenerate it)."""
import json, os, glob, yaml, hashlib
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = ROOT + '/fuzz/corpus'
def put(target, data):
    if isinstance(data,str): data=data.encode()
    d=os.path.join(OUT,target); os.makedirs(d,exist_ok=True)
    name=hashlib.sha1(data).hexdigest()[:16]
    open(os.path.join(d,name),'wb').write(data)

def j(v, **kw): return json.dumps(v, **kw)

# ---------------------------------------------------------------- v1_request
readme_single = [
 {"principal": {"type": "Member", "id": "acme-ada"}, "action": {"type": "Action", "id": "ViewInbox"}, "resource": {"type": "Inbox", "id": "acme-support"}, "context": {}, "entities": []},
 {"principal": "Member::\"acme-nora\"", "action": "ViewInbox", "resource": "Inbox::\"acme-support\"",
  "entities": [{"uid": {"type": "Member", "id": "acme-nora"},
    "attrs": {"company": {"type": "Company", "id": "acme"}, "email": "nora@acme.test", "kind": "team",
              "labels": [], "archived": False, "anonymous": False,
              "inboxes": [], "agents": [], "stores": [], "grants": []},
    "parents": [{"type": "Company", "id": "acme"}, {"type": "Role", "id": "agent"}]}]},
]
cases=[]
for f in sorted(glob.glob(ROOT+'/fixtures/*.test.yaml')):
    s=yaml.safe_load(open(f))
    for c in s.get('cases',[]):
        cases.append(c)
# a spread of fixture cases (one per action)
seen=set(); picked=[]
for c in cases:
    if c['action'] in seen: continue
    seen.add(c['action']); picked.append(c)
for c in picked:
    body={"principal": c['principal'], "action": c['action'], "resource": c['resource']}
    if c.get('context') is not None: body['context']=c['context']
    put('v1_request', b'\x00'+j(body).encode())
for b in readme_single:
    put('v1_request', b'\x00'+j(b).encode())
# the typed reader's own test bodies (src/server/v1/read.rs)
typed = [
 r'{"principal": {"type": "Member", "id": "a\"n\u00e9"}, "action": "Action::\"ViewInbox\"", "resource": "Inbox::\"b\"", "context": {"role": "admin", "n": [1, {"x": true}]}}',
 r'{"principal": "Member::\"a\"", "action": "V", "resource": "Inbox::\"b\"", "entities": [{"uid": {"type": "Member", "id": "a\"\u00e9"}, "attrs": {"n": -5, "big": 18446744073709551615, "f": 1.5, "s": [null, true, {"k": "v"}]}, "parents": []}]}',
 r'{"principal": {"__entity": {"type": "Member", "id": "ann"}}, "action": "V", "resource": "Inbox::\"b\""}',
 r'{"principal": "Member::\"a\"", "principal": "Member::\"b\"", "action": "V", "resource": "Inbox::\"b\""}',
 r'{"principal": {"type": "Member", "type": "Inbox", "id": "a"}, "action": "V", "resource": "Inbox::\"b\""}',
 r'{"principal": "Member::a", "action": "V", "resource": "Inbox::\"b\""}',
 r'["Member::\"a\"", "V", "Inbox::\"b\""]',
 r'{"principal": "Member::\"acme-mia\"", "action": "InviteMember", "resource": "Company::\"acme\"", "context": {"role": "agent"}}',
 r'{"principal": "Member::\"acme-ada\"", "action": "AcceptInvitation", "resource": "Invitation::\"acme-inv-1\"", "context": {"now": {"__extn": {"fn": "datetime", "arg": "2026-11-25T09:00:00Z"}}}}',
]
for b in typed: put('v1_request', b'\x00'+b.encode())
readme_batch = {"requests": [
    {"principal": "Member::\"acme-ada\"",   "action": "ViewInbox", "resource": "Inbox::\"acme-support\""},
    {"principal": "Member::\"acme-ada\"",   "action": "ViewInbox", "resource": "Inbox::acme-billing"},
    {"principal": "Member::\"globex-gil\"", "action": "ViewInbox", "resource": "Inbox::\"acme-support\""}],
  "entities": []}
put('v1_request', b'\x01'+j(readme_batch).encode())
put('v1_request', b'\x03'+j(readme_batch).encode())
put('v1_request', b'\x01'+j({"requests": [readme_single[0], readme_single[1]], "entities": readme_single[1]["entities"]}).encode())
put('v1_request', b'\x01'+j({"requests": [{"principal": "Member::\"acme-mia\"", "action": "ViewInbox", "resource": "Inbox::\"acme-support\"", "entities": [{"uid": {"type": "Inbox", "id": "acme-support"}, "attrs": {"company": {"type": "Company", "id": "acme"}, "private": True}, "parents": [{"type": "Company", "id": "acme"}]}]}, {}]}).encode())
put('v1_request', b'\x01[[]]')

# ---------------------------------------------------------- request_entities
world=yaml.safe_load(open(ROOT+'/fixtures/entities/world.yaml'))
by={ (e['uid']['type'], e['uid']['id']): e for e in world }
def ent(t,i): return by[(t,i)]
import copy
def q(p,a,r,ents,ctx=None):
    d={"principal":p,"action":a,"resource":r,"entities":ents}
    if ctx is not None: d["context"]=ctx
    return b'\x00'+j(d).encode()
put('request_entities', q(*[readme_single[1][k] for k in ("principal","action","resource","entities")]))
mia=copy.deepcopy(ent('Member','acme-mia'))
mia['parents']=[{"type":"Company","id":"globex"},{"type":"Role","id":"admin"}]
mia['attrs']['company']={"type":"Company","id":"globex"}
put('request_entities', q('Member::"acme-mia"','ViewInbox','Inbox::"globex-legal"',[mia]))
acme=copy.deepcopy(ent('Company','acme')); acme['parents']=[{"type":"Store","id":"acme-north"}]
put('request_entities', q('Member::"acme-ada"','ViewInbox','Inbox::"acme-north-line"',[acme]))
store=copy.deepcopy(ent('Store','acme-north')); store['parents']=[{"type":"Company","id":"globex"}]
put('request_entities', q('Member::"acme-ada"','ViewInbox','Inbox::"acme-north-line"',[store]))
inbox=copy.deepcopy(ent('Inbox','acme-support')); inbox['attrs']['private']=True
put('request_entities', q('Member::"acme-mia"','ViewInbox','Inbox::"acme-support"',[inbox]))
put('request_entities', q('Member::"acme-mia"','ViewInbox','Inbox::"acme-support"',[inbox, inbox]))
comp=copy.deepcopy(ent('Company','acme')); comp['attrs']['admin_count']=1
put('request_entities', q('Member::"acme-ada"','RemoveTeamMember','Member::"acme-amy"',[comp]))
put('request_entities', q('Member::"acme-max"','InviteMember','Company::"acme"',[], {"role":"admin"}))
put('request_entities', q('Member::"acme-ada"','ViewInbox','Inbox::"acme-support"',[{"uid":{"type":"Role","id":"boss"},"attrs":{},"parents":[]}]))
put('request_entities', q('Member::"acme-ada"','ViewInbox','Inbox::"acme-support"',[{"uid":{"type":"Member","id":"acme-ada"},"attrs":{},"parents":[]}]))
for e in world[:: max(1,len(world)//8)]:
    put('request_entities', q('Member::"acme-ada"','ViewInbox','Inbox::"acme-support"',[e]))
# structured mode: some raw material
for n in range(4):
    put('request_entities', bytes([1]) + hashlib.sha256(bytes([n])).digest()*4)

# ------------------------------------------------------------------- loader
def lput(kind, path):
    put('loader', bytes([kind]) + open(path,'rb').read())
for f in sorted(glob.glob(ROOT+'/policies/*.cedar')): lput(0, f)
for f in sorted(glob.glob(ROOT+'/tests/data/**/*.cedar', recursive=True)): lput(1, f)
for f in sorted(glob.glob(ROOT+'/schema/*.cedarschema'))+sorted(glob.glob(ROOT+'/tests/data/**/*.cedarschema', recursive=True)): lput(2, f)
for f in sorted(glob.glob(ROOT+'/tests/data/**/*.json', recursive=True)):
    if f.endswith('.cedartest.json'): lput(7, f)
    else: lput(4, f)
for f in [ROOT+'/fixtures/entities/world.yaml', ROOT+'/fixtures/odd/mismatched-seat.yaml']+sorted(glob.glob(ROOT+'/tests/data/**/entities/*.yaml', recursive=True)): lput(5, f)
for f in sorted(glob.glob(ROOT+'/fixtures/*.test.yaml'))+sorted(glob.glob(ROOT+'/tests/data/**/*.test.yaml', recursive=True)): lput(6, f)
lput(8, ROOT+'/routes/app.yaml')
put('loader', bytes([8]) + b'''principal:
  entity: 'Member::"{header.x-user-id}"'
  trusted_header: X-User-Id
unmatched: allow
upstream_headers: {x-doorman-principal: principal, x-doorman-revision: revision}
routes:
  - {method: '*', path: '/inboxes/{inbox}', action: ViewInbox, resource: 'Inbox::"{inbox}"'}
  - method: POST
    path: /companies/{company}/invitations
    action: InviteMember
    resource: 'Company::"{company}"'
    context: {role: '{query.role}'}
''')
# JSON schemas (Cedar's JSON schema format), written for the seeds.
put('loader', bytes([3]) + j({"": {"entityTypes": {
    "Company": {"shape": {"type": "Record", "attributes": {"name": {"type": "String"}}}},
    "Member": {"memberOfTypes": ["Company"], "shape": {"type": "Record", "attributes": {
        "company": {"type": "Entity", "name": "Company"},
        "labels": {"type": "Set", "element": {"type": "String"}},
        "since": {"type": "Extension", "name": "datetime", "required": False}}}},
    "Inbox": {"memberOfTypes": ["Company"], "shape": {"type": "Record", "attributes": {
        "company": {"type": "Entity", "name": "Company"}, "private": {"type": "Boolean"}}}}},
  "actions": {"ViewInbox": {"appliesTo": {"principalTypes": ["Member"], "resourceTypes": ["Inbox"],
        "context": {"type": "Record", "attributes": {"n": {"type": "Long", "required": False}}}}},
        "Group": {}, "InGroup": {"memberOf": [{"id": "Group"}], "appliesTo": {"principalTypes": ["Member"], "resourceTypes": ["Company"]}}}}}, indent=2).encode())
put('loader', bytes([3]) + j({"App": {"commonTypes": {"Name": {"type": "String"}}, "entityTypes": {"User": {"shape": {"type": "Record", "attributes": {"name": {"type": "Name"}}}}, "Role": {"enum": ["a", "b"]}}, "actions": {"read": {"appliesTo": {"principalTypes": ["User"], "resourceTypes": ["User"]}}}}}, indent=1).encode())
# a few texts with multi-byte characters before an error, for columns
put('loader', bytes([0]) + 'permit (principal, action, resource) when { "é" == "é" && resource.privat };\n'.encode())
put('loader', bytes([4]) + '[\n  {"uid": {"type": "Inbox", "id": "é"}, "attrs": {"é": 1}, "parents": []}\n]\n'.encode())
# serde_json counts columns in bytes: errors after multi-byte characters
put('loader', bytes([7]) + '[{"request": "ééééé" x}]'.encode())
put('loader', bytes([4]) + '[{"uid": "ééééé" x}]'.encode())
put('loader', bytes([3]) + '{"éééé": x}'.encode())
put('loader', bytes([7]) + '[{"request": {"principal": "User::\\"é\\"", "action": "Action::\\"view\\"", "resource": "Photo::\\"a\\""}, "entities": [], "decision": "allow", "reason": []}]'.encode())

# ------------------------------------------------------------------- authzen
EV,EVS,SS,SR,SA=0,1,2,3,4
def aput(ep, body, explain=False):
    put('authzen', bytes([ep | (8 if explain else 0)]) + (body if isinstance(body,bytes) else j(body).encode()))
aput(EV, {"subject": {"type": "Member", "id": "acme-ada"}, "action": {"name": "ViewInbox"}, "resource": {"type": "Inbox", "id": "acme-support"}})
aput(EV, {"subject": {"type": "Member", "id": "globex-gil"}, "action": {"name": "ViewInbox"}, "resource": {"type": "Inbox", "id": "acme-support"}}, True)
aput(EV, {"subject": {"type": "Member", "id": "acme-max", "properties": {"kind": "customer"}}, "action": {"name": "InviteMember", "properties": {"role": "agent"}}, "resource": {"type": "Company", "id": "acme"}, "context": {}}, True)
aput(EVS, {"subject": {"type": "Member", "id": "acme-mia"}, "action": {"name": "ViewInbox"}, "options": {"evaluations_semantic": "execute_all"},
  "evaluations": [{"resource": {"type": "Inbox", "id": "acme-support"}}, {"resource": {"type": "Inbox", "id": "acme-north-private"}}, {"resource": {"type": "Inbox"}},
    {"action": {"name": "InviteMember", "properties": {"role": "agent"}}, "resource": {"type": "Company", "id": "acme"}}]})
aput(EVS, {"subject": {"type": "Member", "id": "acme-mia"}, "action": {"name": "ViewInbox"}, "options": {"evaluations_semantic": "deny_on_first_deny"},
  "evaluations": [{"resource": {"type": "Inbox", "id": "acme-support"}}, {"resource": {"type": "Inbox", "id": "acme-north-private"}}, {"resource": {"type": "Inbox", "id": "acme-support"}}]}, True)
aput(EVS, {"subject": {"type": "Member", "id": "acme-mia"}, "action": {"name": "ViewInbox"}, "options": {"evaluations_semantic": "permit_on_first_permit"},
  "evaluations": [{"resource": {"type": "Inbox", "id": "acme-north-private"}}, {"resource": {"type": "Inbox", "id": "acme-support"}}, {"subject": 5}]})
aput(SS, {"subject": {"type": "Member"}, "action": {"name": "ViewInbox"}, "resource": {"type": "Inbox", "id": "acme-north-private"}, "page": {"limit": 2}})
aput(SS, {"subject": {"type": "Member"}, "action": {"name": "ViewInbox"}, "resource": {"type": "Inbox", "id": "acme-north-private"}, "page": {"token": "0158bf32cc156115a05026bd4331653f4d0000000201000001b061636d652d616461"}})
aput(SR, {"subject": {"type": "Member", "id": "acme-mia"}, "action": {"name": "ViewInbox"}, "resource": {"type": "Inbox"}})
aput(SR, {"subject": {"type": "Member", "id": "acme-mia", "properties": {"inboxes": [{"type": "Inbox", "id": "acme-billing"}]}}, "action": {"name": "SendMessage"}, "resource": {"type": "Inbox"}, "page": {"limit": 1}})
aput(SA, {"subject": {"type": "Member", "id": "acme-mia"}, "resource": {"type": "Inbox", "id": "acme-support"}})
aput(SA, {"subject": {"type": "Member", "id": "acme-max"}, "resource": {"type": "Company", "id": "acme"}, "context": {"role": "agent"}})

# ------------------------------------------------------------------- gateway
routes=yaml.safe_load(open(ROOT+'/routes/app.yaml'))['routes']
ids={"inbox":"acme-support","company":"acme","key":"acme-key","invitation":"acme-inv-nia","member":"acme-mia","contact":"acme-carl","property":"acme-birthday","campaign":"acme-spring-sale","agent":"acme-ivy","call":"acme-ivy-call-1"}
good={"company":"acme","sub":"ada","exp":3600}
import re
for r in routes:
    m=r['method']; m = m[0] if isinstance(m,list) else m
    path=re.sub(r'\{(\w+)\}', lambda mm: ids.get(mm.group(1),'x'), r['path'])
    if r.get('context',{}).get('role'): path+='?role=agent'
    put('gateway', f"{m} {path}\nx-request-id: r1\n\n{j(good)}\n")
put('gateway', "GET /inboxes/acme%20support\n\n"+j({"company":"acme","sub":"ada","exp":3600,"nbf":-3600,"aud":["x","doorman"]}))
put('gateway', "GET /inboxes/acme-support\n\n"+j({"company":"acme","sub":"ada","exp":-3600}))
put('gateway', "GET /inboxes/acme-support\n\n"+j({"company":"acme","sub":"ada","exp":3600,"kid":"sample-2026"}))
put('gateway', "GET /inboxes/acme-support\n\nBearer eyJhbGciOiJIUzI1NiJ9.e30.x")
put('gateway', "GET /inboxes/acme-support\n\nBearer eyJhbGciOiJub25lIn0.eyJjb21wYW55IjoiYWNtZSJ9.")
put('gateway', "DELETE /unknown/path\n\n")
put('gateway', "POST /companies/acme/invitations?role=a%2Bb&role=x\n\n"+j({"company":1,"sub":True,"exp":3600}))
