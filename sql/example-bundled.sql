-- A worked example of doorman's PostgreSQL contract: the bundled
-- team-workspace model (schema/doorman.cedarschema) kept in an application's
-- own tables, exposed as doorman.entities, with triggers that record every
-- change. Load sql/doorman-postgres.sql first, then this file:
--
--   psql -v ON_ERROR_STOP=1 -f sql/doorman-postgres.sql -f sql/example-bundled.sql app
--   doorman serve --entities postgres://app@localhost/app
--
-- Its last part inserts the bundled sample world (fixtures/entities/world.yaml)
-- into the tables, so doorman answers the same from the database as from the
-- files. An application maps its own tables the same way: one SELECT per
-- entity type in the view, and one trigger per table that names every entity
-- whose row the change alters.

CREATE SCHEMA IF NOT EXISTS app;

-- --------------------------------------------------------------- tables
-- What a SaaS of this shape keeps anyway; nothing here is doorman's.

CREATE TABLE app.companies (
    id                         text    PRIMARY KEY,
    name                       text    NOT NULL,
    managers_can_invite_admins boolean NOT NULL DEFAULT false,
    admin_count                integer NOT NULL DEFAULT 0
);

CREATE TABLE app.stores (
    id         text PRIMARY KEY,
    company_id text NOT NULL REFERENCES app.companies ON DELETE CASCADE
);

CREATE TABLE app.members (
    id         text    PRIMARY KEY,
    company_id text    NOT NULL REFERENCES app.companies ON DELETE CASCADE,
    role       text    NOT NULL CHECK (role IN ('admin', 'manager', 'agent', 'member', 'store_member')),
    email      text    NOT NULL,
    kind       text    NOT NULL DEFAULT 'team',
    labels     text[]  NOT NULL DEFAULT '{}',
    grants     text[]  NOT NULL DEFAULT '{}',
    archived   boolean NOT NULL DEFAULT false,
    anonymous  boolean NOT NULL DEFAULT false
);

CREATE TABLE app.inboxes (
    id         text    PRIMARY KEY,
    company_id text    NOT NULL REFERENCES app.companies ON DELETE CASCADE,
    private    boolean NOT NULL DEFAULT false,
    store_id   text    REFERENCES app.stores ON DELETE SET NULL
);

CREATE TABLE app.agents (
    id         text PRIMARY KEY,
    company_id text NOT NULL REFERENCES app.companies ON DELETE CASCADE
);

CREATE TABLE app.calls (
    id            text    PRIMARY KEY,
    company_id    text    NOT NULL REFERENCES app.companies ON DELETE CASCADE,
    agent_id      text    NOT NULL REFERENCES app.agents ON DELETE CASCADE,
    has_recording boolean NOT NULL DEFAULT false
);

CREATE TABLE app.contacts (
    id         text   PRIMARY KEY,
    company_id text   NOT NULL REFERENCES app.companies ON DELETE CASCADE,
    labels     text[] NOT NULL DEFAULT '{}',
    store_id   text   REFERENCES app.stores ON DELETE SET NULL
);

CREATE TABLE app.properties (
    id         text PRIMARY KEY,
    company_id text NOT NULL REFERENCES app.companies ON DELETE CASCADE
);

CREATE TABLE app.campaigns (
    id         text PRIMARY KEY,
    company_id text NOT NULL REFERENCES app.companies ON DELETE CASCADE
);

CREATE TABLE app.invitations (
    id         text        PRIMARY KEY,
    company_id text        NOT NULL REFERENCES app.companies ON DELETE CASCADE,
    email      text        NOT NULL,
    role       text        NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked    boolean     NOT NULL DEFAULT false
);

CREATE TABLE app.api_keys (
    id         text PRIMARY KEY,
    company_id text NOT NULL REFERENCES app.companies ON DELETE CASCADE,
    -- A store's key sits under the store, else under the company.
    store_id   text REFERENCES app.stores ON DELETE CASCADE
);

-- Assignments (R13, R14, R23-R25): rows of their own, as apps keep them.
CREATE TABLE app.member_inboxes (
    member_id text REFERENCES app.members ON DELETE CASCADE,
    inbox_id  text REFERENCES app.inboxes ON DELETE CASCADE,
    PRIMARY KEY (member_id, inbox_id)
);

CREATE TABLE app.member_agents (
    member_id text REFERENCES app.members ON DELETE CASCADE,
    agent_id  text REFERENCES app.agents ON DELETE CASCADE,
    PRIMARY KEY (member_id, agent_id)
);

CREATE TABLE app.member_stores (
    member_id text REFERENCES app.members ON DELETE CASCADE,
    store_id  text REFERENCES app.stores ON DELETE CASCADE,
    PRIMARY KEY (member_id, store_id)
);

-- ----------------------------------------------------------------- view
-- One SELECT per entity type. Entity references use Cedar's short
-- {"type", "id"} form; datetimes are plain strings the schema reads.

CREATE FUNCTION app.ref(uid_type text, uid_id text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN jsonb_build_object('type', uid_type, 'id', uid_id);

CREATE OR REPLACE VIEW doorman.entities (uid_type, uid_id, attrs, parents) AS
    SELECT 'Role', role, '{}'::jsonb, '[]'::jsonb
      FROM unnest(ARRAY['admin', 'manager', 'agent', 'member', 'store_member']) AS role
UNION ALL
    SELECT 'Company', c.id,
           jsonb_build_object('name', c.name,
                              'managers_can_invite_admins', c.managers_can_invite_admins,
                              'admin_count', c.admin_count),
           '[]'::jsonb
      FROM app.companies c
UNION ALL
    SELECT 'Store', s.id, jsonb_build_object('company', app.ref('Company', s.company_id)),
           jsonb_build_array(app.ref('Company', s.company_id))
      FROM app.stores s
UNION ALL
    SELECT 'Member', m.id,
           jsonb_build_object(
               'company',   app.ref('Company', m.company_id),
               'email',     m.email,
               'kind',      m.kind,
               'labels',    to_jsonb(m.labels),
               'grants',    to_jsonb(m.grants),
               'archived',  m.archived,
               'anonymous', m.anonymous,
               'inboxes',   coalesce((SELECT jsonb_agg(app.ref('Inbox', a.inbox_id))
                                        FROM app.member_inboxes a WHERE a.member_id = m.id), '[]'),
               'agents',    coalesce((SELECT jsonb_agg(app.ref('Agent', a.agent_id))
                                        FROM app.member_agents a WHERE a.member_id = m.id), '[]'),
               'stores',    coalesce((SELECT jsonb_agg(app.ref('Store', a.store_id))
                                        FROM app.member_stores a WHERE a.member_id = m.id), '[]')),
           jsonb_build_array(app.ref('Company', m.company_id), app.ref('Role', m.role))
      FROM app.members m
UNION ALL
    SELECT 'Inbox', i.id,
           jsonb_build_object('company', app.ref('Company', i.company_id), 'private', i.private)
             || CASE WHEN i.store_id IS NULL THEN '{}'::jsonb
                     ELSE jsonb_build_object('store', app.ref('Store', i.store_id)) END,
           jsonb_build_array(app.ref('Company', i.company_id))
      FROM app.inboxes i
UNION ALL
    SELECT 'Agent', a.id, jsonb_build_object('company', app.ref('Company', a.company_id)),
           jsonb_build_array(app.ref('Company', a.company_id))
      FROM app.agents a
UNION ALL
    SELECT 'Call', c.id,
           jsonb_build_object('company', app.ref('Company', c.company_id), 'has_recording', c.has_recording),
           jsonb_build_array(app.ref('Agent', c.agent_id))
      FROM app.calls c
UNION ALL
    SELECT 'Contact', c.id,
           jsonb_build_object('company', app.ref('Company', c.company_id), 'labels', to_jsonb(c.labels))
             || CASE WHEN c.store_id IS NULL THEN '{}'::jsonb
                     ELSE jsonb_build_object('store', app.ref('Store', c.store_id)) END,
           jsonb_build_array(app.ref('Company', c.company_id))
      FROM app.contacts c
UNION ALL
    SELECT 'Property', p.id, jsonb_build_object('company', app.ref('Company', p.company_id)),
           jsonb_build_array(app.ref('Company', p.company_id))
      FROM app.properties p
UNION ALL
    SELECT 'Campaign', c.id, jsonb_build_object('company', app.ref('Company', c.company_id)),
           jsonb_build_array(app.ref('Company', c.company_id))
      FROM app.campaigns c
UNION ALL
    SELECT 'Invitation', v.id,
           jsonb_build_object('company', app.ref('Company', v.company_id),
                              'email', v.email, 'role', v.role, 'revoked', v.revoked,
                              'expires_at', to_char(v.expires_at AT TIME ZONE 'UTC',
                                                    'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
           jsonb_build_array(app.ref('Company', v.company_id))
      FROM app.invitations v
UNION ALL
    SELECT 'ApiKey', k.id, jsonb_build_object('company', app.ref('Company', k.company_id)),
           jsonb_build_array(CASE WHEN k.store_id IS NULL THEN app.ref('Company', k.company_id)
                                  ELSE app.ref('Store', k.store_id) END)
      FROM app.api_keys k;

-- ------------------------------------------------------------- triggers
-- Every table names the entities whose rows a change to it alters:
-- TG_ARGV[0] is the entity type, TG_ARGV[1] the column holding its id. An
-- entity's own table says 'delete' when its row goes; an assignment table
-- only ever changes the member's row ('upsert').

CREATE FUNCTION app.doorman_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    own boolean := TG_NARGS < 3 OR TG_ARGV[2] <> 'related';
    old_id text := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) ->> TG_ARGV[1] END;
    new_id text := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) ->> TG_ARGV[1] END;
BEGIN
    -- An update that keeps the id changes one entity.
    IF old_id = new_id THEN
        PERFORM doorman.record_change(TG_ARGV[0], new_id, 'upsert');
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM doorman.record_change(TG_ARGV[0], old_id,
                                      CASE WHEN own THEN 'delete' ELSE 'upsert' END);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM doorman.record_change(TG_ARGV[0], new_id, 'upsert');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER doorman AFTER INSERT OR UPDATE OR DELETE ON app.companies
    FOR EACH ROW EXECUTE FUNCTION app.doorman_changed('Company', 'id');
CREATE TRIGGER doorman AFTER INSERT OR UPDATE OR DELETE ON app.stores
    FOR EACH ROW EXECUTE FUNCTION app.doorman_changed('Store', 'id');
CREATE TRIGGER doorman AFTER INSERT OR UPDATE OR DELETE ON app.members
    FOR EACH ROW EXECUTE FUNCTION app.doorman_changed('Member', 'id');
CREATE TRIGGER doorman AFTER INSERT OR UPDATE OR DELETE ON app.inboxes
    FOR EACH ROW EXECUTE FUNCTION app.doorman_changed('Inbox', 'id');
CREATE TRIGGER doorman AFTER INSERT OR UPDATE OR DELETE ON app.agents
    FOR EACH ROW EXECUTE FUNCTION app.doorman_changed('Agent', 'id');
CREATE TRIGGER doorman AFTER INSERT OR UPDATE OR DELETE ON app.calls
    FOR EACH ROW EXECUTE FUNCTION app.doorman_changed('Call', 'id');
CREATE TRIGGER doorman AFTER INSERT OR UPDATE OR DELETE ON app.contacts
    FOR EACH ROW EXECUTE FUNCTION app.doorman_changed('Contact', 'id');
CREATE TRIGGER doorman AFTER INSERT OR UPDATE OR DELETE ON app.properties
    FOR EACH ROW EXECUTE FUNCTION app.doorman_changed('Property', 'id');
CREATE TRIGGER doorman AFTER INSERT OR UPDATE OR DELETE ON app.campaigns
    FOR EACH ROW EXECUTE FUNCTION app.doorman_changed('Campaign', 'id');
CREATE TRIGGER doorman AFTER INSERT OR UPDATE OR DELETE ON app.invitations
    FOR EACH ROW EXECUTE FUNCTION app.doorman_changed('Invitation', 'id');
CREATE TRIGGER doorman AFTER INSERT OR UPDATE OR DELETE ON app.api_keys
    FOR EACH ROW EXECUTE FUNCTION app.doorman_changed('ApiKey', 'id');
CREATE TRIGGER doorman AFTER INSERT OR UPDATE OR DELETE ON app.member_inboxes
    FOR EACH ROW EXECUTE FUNCTION app.doorman_changed('Member', 'member_id', 'related');
CREATE TRIGGER doorman AFTER INSERT OR UPDATE OR DELETE ON app.member_agents
    FOR EACH ROW EXECUTE FUNCTION app.doorman_changed('Member', 'member_id', 'related');
CREATE TRIGGER doorman AFTER INSERT OR UPDATE OR DELETE ON app.member_stores
    FOR EACH ROW EXECUTE FUNCTION app.doorman_changed('Member', 'member_id', 'related');

-- ---------------------------------------------------------- sample world
-- fixtures/entities/world.yaml as rows.

INSERT INTO app.companies VALUES ('acme', 'Acme SMS', false, 2);
INSERT INTO app.companies VALUES ('globex', 'Globex', true, 1);
INSERT INTO app.stores VALUES ('acme-north', 'acme');
INSERT INTO app.stores VALUES ('acme-south', 'acme');
INSERT INTO app.stores VALUES ('globex-east', 'globex');
INSERT INTO app.inboxes VALUES ('acme-support', 'acme', false, NULL);
INSERT INTO app.inboxes VALUES ('acme-billing', 'acme', true, NULL);
INSERT INTO app.inboxes VALUES ('acme-north-line', 'acme', false, 'acme-north');
INSERT INTO app.inboxes VALUES ('acme-north-private', 'acme', true, 'acme-north');
INSERT INTO app.inboxes VALUES ('acme-south-line', 'acme', false, 'acme-south');
INSERT INTO app.inboxes VALUES ('globex-support', 'globex', false, NULL);
INSERT INTO app.inboxes VALUES ('globex-legal', 'globex', true, NULL);
INSERT INTO app.inboxes VALUES ('globex-east-line', 'globex', false, 'globex-east');
INSERT INTO app.agents VALUES ('acme-ivy', 'acme');
INSERT INTO app.agents VALUES ('acme-otto', 'acme');
INSERT INTO app.agents VALUES ('globex-gort', 'globex');
INSERT INTO app.calls VALUES ('acme-ivy-call-1', 'acme', 'acme-ivy', true);
INSERT INTO app.calls VALUES ('acme-ivy-call-2', 'acme', 'acme-ivy', false);
INSERT INTO app.calls VALUES ('acme-otto-call-1', 'acme', 'acme-otto', true);
INSERT INTO app.calls VALUES ('globex-gort-call-1', 'globex', 'globex-gort', true);
INSERT INTO app.contacts VALUES ('acme-carl', 'acme', '{}', NULL);
INSERT INTO app.contacts VALUES ('acme-vera', 'acme', ARRAY['vip']::text[], NULL);
INSERT INTO app.contacts VALUES ('acme-nora', 'acme', '{}', 'acme-north');
INSERT INTO app.contacts VALUES ('acme-vince', 'acme', ARRAY['vip']::text[], 'acme-north');
INSERT INTO app.contacts VALUES ('acme-sol', 'acme', '{}', 'acme-south');
INSERT INTO app.contacts VALUES ('globex-gail', 'globex', '{}', NULL);
INSERT INTO app.properties VALUES ('acme-birthday', 'acme');
INSERT INTO app.properties VALUES ('globex-tier', 'globex');
INSERT INTO app.campaigns VALUES ('acme-spring-sale', 'acme');
INSERT INTO app.campaigns VALUES ('globex-launch', 'globex');
INSERT INTO app.invitations VALUES ('acme-inv-nia', 'acme', 'nia@acme.test', 'agent', '2026-11-29T00:00:00Z', false);
INSERT INTO app.invitations VALUES ('acme-inv-nia-expired', 'acme', 'nia@acme.test', 'agent', '2026-11-10T00:00:00Z', false);
INSERT INTO app.invitations VALUES ('acme-inv-nia-revoked', 'acme', 'nia@acme.test', 'manager', '2026-11-30T00:00:00Z', true);
INSERT INTO app.invitations VALUES ('globex-inv-ada', 'globex', 'ada@example.com', 'manager', '2026-11-30T00:00:00Z', false);
INSERT INTO app.api_keys VALUES ('acme-key', 'acme', NULL);
INSERT INTO app.api_keys VALUES ('acme-north-key', 'acme', 'acme-north');
INSERT INTO app.api_keys VALUES ('globex-key', 'globex', NULL);
INSERT INTO app.members VALUES ('acme-ada', 'acme', 'admin', 'ada@example.com', 'team', '{}', '{}', false, false);
INSERT INTO app.members VALUES ('acme-amy', 'acme', 'admin', 'amy@acme.test', 'team', '{}', '{}', false, false);
INSERT INTO app.members VALUES ('acme-max', 'acme', 'manager', 'max@acme.test', 'team', '{}', '{}', false, false);
INSERT INTO app.members VALUES ('acme-abe', 'acme', 'agent', 'abe@acme.test', 'team', '{}', ARRAY['edit_agents','recordings']::text[], false, false);
INSERT INTO app.members VALUES ('acme-mia', 'acme', 'member', 'mia@acme.test', 'team', '{}', ARRAY['advanced_editor','crm','billable_minutes']::text[], false, false);
INSERT INTO app.members VALUES ('acme-vic', 'acme', 'member', 'vic@acme.test', 'team', ARRAY['vip-desk']::text[], '{}', false, false);
INSERT INTO app.members VALUES ('acme-sam', 'acme', 'store_member', 'sam@acme.test', 'team', '{}', ARRAY['crm']::text[], false, false);
INSERT INTO app.members VALUES ('acme-nia', 'acme', 'agent', 'nia@acme.test', 'team', '{}', '{}', false, false);
INSERT INTO app.members VALUES ('acme-old', 'acme', 'admin', 'old@acme.test', 'team', '{}', ARRAY['edit_agents','advanced_editor','crm','billable_minutes','recordings']::text[], true, false);
INSERT INTO app.members VALUES ('acme-anon', 'acme', 'member', '', 'customer', '{}', '{}', false, true);
INSERT INTO app.members VALUES ('acme-cat', 'acme', 'member', 'cat@customer.test', 'customer', ARRAY['vip-desk']::text[], '{}', false, false);
INSERT INTO app.members VALUES ('globex-gus', 'globex', 'admin', 'gus@globex.test', 'team', '{}', '{}', false, false);
INSERT INTO app.members VALUES ('globex-meg', 'globex', 'manager', 'meg@globex.test', 'team', '{}', '{}', false, false);
INSERT INTO app.members VALUES ('globex-gil', 'globex', 'agent', 'gil@globex.test', 'team', '{}', ARRAY['edit_agents','recordings']::text[], false, false);
INSERT INTO app.members VALUES ('globex-ada', 'globex', 'member', 'ada@example.com', 'team', '{}', '{}', false, false);
INSERT INTO app.members VALUES ('globex-sue', 'globex', 'store_member', 'sue@globex.test', 'team', '{}', '{}', false, false);
INSERT INTO app.member_inboxes VALUES ('acme-ada', 'acme-support');
INSERT INTO app.member_inboxes VALUES ('acme-amy', 'acme-support');
INSERT INTO app.member_inboxes VALUES ('acme-amy', 'acme-billing');
INSERT INTO app.member_inboxes VALUES ('acme-max', 'acme-billing');
INSERT INTO app.member_inboxes VALUES ('acme-abe', 'acme-support');
INSERT INTO app.member_agents VALUES ('acme-abe', 'acme-ivy');
INSERT INTO app.member_inboxes VALUES ('acme-mia', 'acme-support');
INSERT INTO app.member_inboxes VALUES ('acme-mia', 'acme-billing');
INSERT INTO app.member_agents VALUES ('acme-mia', 'acme-ivy');
INSERT INTO app.member_inboxes VALUES ('acme-sam', 'acme-north-line');
INSERT INTO app.member_inboxes VALUES ('acme-sam', 'acme-south-line');
INSERT INTO app.member_agents VALUES ('acme-sam', 'acme-ivy');
INSERT INTO app.member_stores VALUES ('acme-sam', 'acme-north');
INSERT INTO app.member_inboxes VALUES ('acme-old', 'acme-support');
INSERT INTO app.member_agents VALUES ('acme-old', 'acme-ivy');
INSERT INTO app.member_inboxes VALUES ('acme-anon', 'acme-support');
INSERT INTO app.member_inboxes VALUES ('acme-cat', 'acme-support');
INSERT INTO app.member_inboxes VALUES ('globex-gus', 'globex-support');
INSERT INTO app.member_inboxes VALUES ('globex-meg', 'globex-support');
INSERT INTO app.member_inboxes VALUES ('globex-gil', 'globex-support');
INSERT INTO app.member_agents VALUES ('globex-gil', 'globex-gort');
INSERT INTO app.member_inboxes VALUES ('globex-ada', 'globex-support');
INSERT INTO app.member_inboxes VALUES ('globex-sue', 'globex-east-line');
INSERT INTO app.member_stores VALUES ('globex-sue', 'globex-east');
