import { lazy, Suspense, useState } from "react";
import { NavLink, Route, Routes, Link } from "react-router";
import { Icon, type IconName } from "./components/Icon";
import { applyTheme, storedTheme, type Theme } from "./lib/theme";
import { Dashboard } from "./views/Dashboard";
import { Empty, Loading } from "./components/states";

// The dashboard is in the initial bundle; other views load on first visit.
const CertificateList = lazy(() => import("./views/CertificateList").then((m) => ({ default: m.CertificateList })));
const CertificateDetail = lazy(() => import("./views/CertificateDetail").then((m) => ({ default: m.CertificateDetail })));
const CertificateForm = lazy(() => import("./views/CertificateForm").then((m) => ({ default: m.CertificateForm })));
const AuditTrail = lazy(() => import("./views/AuditTrail").then((m) => ({ default: m.AuditTrail })));
const OwnersView = lazy(() => import("./views/resources").then((m) => ({ default: m.OwnersView })));
const TeamsView = lazy(() => import("./views/resources").then((m) => ({ default: m.TeamsView })));
const TargetsView = lazy(() => import("./views/resources").then((m) => ({ default: m.TargetsView })));
const AgentsView = lazy(() => import("./views/Agents").then((m) => ({ default: m.AgentsView })));
const AgentDetail = lazy(() => import("./views/Agents").then((m) => ({ default: m.AgentDetail })));
const DiscoveryView = lazy(() => import("./views/Discovery").then((m) => ({ default: m.DiscoveryView })));
const IssuersView = lazy(() => import("./views/Issuers").then((m) => ({ default: m.IssuersView })));
const IssuedCertificatesView = lazy(() => import("./views/Issuers").then((m) => ({ default: m.IssuedCertificatesView })));
const ProfilesView = lazy(() => import("./views/Profiles").then((m) => ({ default: m.ProfilesView })));
const ProfileDetail = lazy(() => import("./views/Profiles").then((m) => ({ default: m.ProfileDetail })));
const ProfileFormView = lazy(() => import("./views/Profiles").then((m) => ({ default: m.ProfileFormView })));
const JobsView = lazy(() => import("./views/Jobs").then((m) => ({ default: m.JobsView })));
const JobDetail = lazy(() => import("./views/Jobs").then((m) => ({ default: m.JobDetail })));
const PoliciesView = lazy(() => import("./views/Policies").then((m) => ({ default: m.PoliciesView })));
const PolicyDetail = lazy(() => import("./views/Policies").then((m) => ({ default: m.PolicyDetail })));
const PolicyFormView = lazy(() => import("./views/Policies").then((m) => ({ default: m.PolicyFormView })));
const PolicyViolationsView = lazy(() => import("./views/Policies").then((m) => ({ default: m.PolicyViolationsView })));
const RenewalPoliciesView = lazy(() => import("./views/resources").then((m) => ({ default: m.RenewalPoliciesView })));

const NAV: { to: string; label: string; icon: IconName; end?: boolean }[] = [
  { to: "/", label: "Dashboard", icon: "dashboard", end: true },
  { to: "/certificates", label: "Certificates", icon: "cert" },
  { to: "/jobs", label: "Jobs", icon: "refresh" },
];
const NAV_ISSUANCE: { to: string; label: string; icon: IconName }[] = [
  { to: "/issuers", label: "Issuers & CAs", icon: "shield" },
  { to: "/profiles", label: "Profiles", icon: "sliders" },
];
const NAV_INVENTORY: { to: string; label: string; icon: IconName }[] = [
  { to: "/owners", label: "Owners", icon: "user" },
  { to: "/teams", label: "Teams", icon: "users" },
  { to: "/targets", label: "Targets", icon: "server" },
  { to: "/renewal-policies", label: "Renewal policies", icon: "policy" },
];
const NAV_FLEET: { to: string; label: string; icon: IconName }[] = [
  { to: "/agents", label: "Agents", icon: "agent" },
  { to: "/discovery", label: "Discovery", icon: "search" },
];

const NAV_COMPLIANCE: { to: string; label: string; icon: IconName }[] = [
  { to: "/policies", label: "Policies", icon: "list" },
  { to: "/policy-violations", label: "Violations", icon: "alert" },
  { to: "/audit", label: "Audit trail", icon: "audit" },
];

function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>(storedTheme);
  const next: Theme = theme === "dark" ? "light" : "dark";
  return (
    <button
      type="button"
      className="btn small"
      onClick={() => {
        applyTheme(next);
        setTheme(next);
      }}
      aria-label={`Switch to ${next} theme`}
    >
      <Icon name={theme === "dark" ? "sun" : "moon"} /> {next === "light" ? "Light" : "Dark"} theme
    </button>
  );
}

export function App() {
  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <nav className="sidebar" aria-label="Main">
        <Link to="/" className="brand">
          <Icon name="shield" size={18} /> certctl
        </Link>
        {NAV.map((n) => (
          <NavLink key={n.to} to={n.to} end={n.end} className="nav-link">
            <Icon name={n.icon} /> {n.label}
          </NavLink>
        ))}
        <div className="nav-section">Issuance</div>
        {NAV_ISSUANCE.map((n) => (
          <NavLink key={n.to} to={n.to} className="nav-link">
            <Icon name={n.icon} /> {n.label}
          </NavLink>
        ))}
        <div className="nav-section">Inventory</div>
        {NAV_INVENTORY.map((n) => (
          <NavLink key={n.to} to={n.to} className="nav-link">
            <Icon name={n.icon} /> {n.label}
          </NavLink>
        ))}
        <div className="nav-section">Fleet</div>
        {NAV_FLEET.map((n) => (
          <NavLink key={n.to} to={n.to} className="nav-link">
            <Icon name={n.icon} /> {n.label}
          </NavLink>
        ))}
        <div className="nav-section">Compliance</div>
        {NAV_COMPLIANCE.map((n) => (
          <NavLink key={n.to} to={n.to} className="nav-link">
            <Icon name={n.icon} /> {n.label}
          </NavLink>
        ))}
        <div className="sidebar-foot">
          <ThemeToggle />
          <span className="faint" style={{ fontSize: 11 }}>
            Press <kbd>/</kbd> to search
          </span>
        </div>
      </nav>
      <main id="main" className="main" tabIndex={-1}>
        <Suspense fallback={<Loading what="view" />}>
        <Routes>
          <Route path="/" element={<Dashboard />} />
          <Route path="/certificates" element={<CertificateList />} />
          <Route path="/certificates/new" element={<CertificateForm mode="create" />} />
          <Route path="/certificates/:id" element={<CertificateDetail />} />
          <Route path="/certificates/:id/edit" element={<CertificateForm mode="edit" />} />
          <Route path="/jobs" element={<JobsView />} />
          <Route path="/jobs/:id" element={<JobDetail />} />
          <Route path="/issuers" element={<IssuersView />} />
          <Route path="/issuers/:id/issued" element={<IssuedCertificatesView />} />
          <Route path="/profiles" element={<ProfilesView />} />
          <Route path="/profiles/new" element={<ProfileFormView mode="create" />} />
          <Route path="/profiles/:id" element={<ProfileDetail />} />
          <Route path="/profiles/:id/edit" element={<ProfileFormView mode="edit" />} />
          <Route path="/owners" element={<OwnersView />} />
          <Route path="/teams" element={<TeamsView />} />
          <Route path="/targets" element={<TargetsView />} />
          <Route path="/agents" element={<AgentsView />} />
          <Route path="/agents/:id" element={<AgentDetail />} />
          <Route path="/discovery" element={<DiscoveryView />} />
          <Route path="/renewal-policies" element={<RenewalPoliciesView />} />
          <Route path="/policies" element={<PoliciesView />} />
          <Route path="/policies/new" element={<PolicyFormView mode="create" />} />
          <Route path="/policies/:id" element={<PolicyDetail />} />
          <Route path="/policies/:id/edit" element={<PolicyFormView mode="edit" />} />
          <Route path="/policy-violations" element={<PolicyViolationsView />} />
          <Route path="/audit" element={<AuditTrail />} />
          <Route
            path="*"
            element={
              <Empty title="Page not found">
                <p>
                  <Link to="/">Go to the dashboard</Link>
                </p>
              </Empty>
            }
          />
        </Routes>
        </Suspense>
      </main>
    </div>
  );
}
